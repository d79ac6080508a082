"""Pass 1 of ingestion: read the keys of every row (id, label, split, image header) and decide
per row whether it is usable, its class code and its split, plus the image size and channels.

Memory per row is 14 bytes while scanning (a 64-bit id hash, an int32 temporary label index, an int8
split code and an int8 problem code; image inputs add height, width and a grayscale flag) and 6 bytes
in the finished plan (problem, int32 class code, split): no per-row Python objects are kept across
batches, so a million rows cost about 14 MB, never the data itself.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from exemplar.data.config import DataConfig
from exemplar.data.growing import GrowingArray, bincount
from exemplar.data.ids import DuplicateIds, find_duplicate_ids, id_hashes
from exemplar.data.images import ImageDecodeError, probe_image
from exemplar.data.labels import MISSING, LabelCollector
from exemplar.data.quarantine import REASONS
from exemplar.data.raw import RawBatch, Reader
from exemplar.data.split import stratified_test_mask
from exemplar.errors import ExemplarError

PROBLEMS = ("", *REASONS)  # problem code 0 = usable
PROBLEM_CODE = {name: code for code, name in enumerate(PROBLEMS)}
TRAIN, TEST, NO_SPLIT, BAD_SPLIT = 0, 1, -1, -2
log = logging.getLogger("exemplar.data")
# per-row bookkeeping of pass 1 and its dtype (height, width and gray only for images)
_COLUMNS = {"temp": np.int32, "problem": np.int8, "split": np.int8, "hash": np.uint64,
            "height": np.int32, "width": np.int32, "gray": bool}


@dataclass
class IngestPlan:
    """Per-row decisions of pass 1 (arrays of length rows_read, in source order)."""

    problems: np.ndarray  # int8 index into PROBLEMS
    codes: np.ndarray  # int32 class code, -1 for unusable rows
    splits: np.ndarray  # int8 TRAIN/TEST
    first_of: DuplicateIds  # duplicate row -> row that first used its id (plan.first_of[row])
    class_names: list[str]
    image_size: tuple[int, int] | None = None
    channels: int | None = None
    probe_problems: dict[int, str] = field(default_factory=dict)  # row -> detail of a bad image header
    split_aliases: dict[str, int] = field(default_factory=dict)  # split values read as train/test ("validation": rows)

    @property
    def rows_read(self) -> int:
        return len(self.problems)


def limited(batches: Iterable[RawBatch], limit: int | None) -> Iterator[RawBatch]:
    """The first `limit` rows of `batches` (all of them when `limit` is None)."""
    seen = 0
    for batch in batches:
        if limit is not None and seen + len(batch) > limit:
            keep = limit - seen
            yield _head(batch, keep)
            return
        seen += len(batch)
        yield batch


def _head(batch: RawBatch, n: int) -> RawBatch:
    return RawBatch(
        keys=batch.keys.iloc[:n],
        images=None if batch.images is None else batch.images[:n],
        arrays=None if batch.arrays is None else batch.arrays[:n],
        features=None if batch.features is None else batch.features.iloc[:n],
    )


# other names a split column commonly uses: a validation or dev set is held out like a test set
SPLIT_ALIASES = {"training": TRAIN, "testing": TEST, "val": TEST, "valid": TEST, "validation": TEST, "dev": TEST,
                 "eval": TEST, "evaluation": TEST, "holdout": TEST}


def split_codes(splits: pd.Series, aliases_seen: Counter | None = None) -> np.ndarray:
    """(N,) int8: TRAIN, TEST, NO_SPLIT (None: the source has no split) or BAD_SPLIT (anything else).
    A value of :data:`SPLIT_ALIASES` (any case) counts as its split, and is counted in `aliases_seen`.

    Readers with a split column give missing values as "" (a BAD_SPLIT), never None.
    """
    text = splits.astype(object).where(splits.notna(), None).map(lambda s: None if s is None else str(s).strip().lower())
    codes = np.full(len(splits), BAD_SPLIT, dtype=np.int8)
    codes[(text == "train").to_numpy()] = TRAIN
    codes[(text == "test").to_numpy()] = TEST
    aliased = text.isin(list(SPLIT_ALIASES)).to_numpy()
    if aliased.any():
        codes[aliased] = text[aliased].map(SPLIT_ALIASES).to_numpy(dtype=np.int8)
        if aliases_seen is not None:
            aliases_seen.update(text[aliased].tolist())
    codes[text.isna().to_numpy()] = NO_SPLIT
    return codes


class _Scanner:
    """Accumulates the small per-row arrays of pass 1."""

    def __init__(self, reader: Reader, expected_rows: int | None = None, max_pixels: int | None = None):
        self.max_pixels = max_pixels
        self.reader = reader
        self.labels = LabelCollector(reader.label_names)
        image_only = ("height", "width", "gray") if reader.modality != "image" else ()
        reserve = {name: 0 if name in image_only else expected_rows or 0 for name in _COLUMNS}
        self.parts = {name: GrowingArray(dtype, reserve[name]) for name, dtype in _COLUMNS.items()}
        self.probe_problems: dict[int, str] = {}
        self.split_aliases: Counter = Counter()  # split values read as train/test (e.g. "validation"), rows each
        self.rows = 0

    def add(self, batch: RawBatch) -> None:
        keys = batch.keys
        problems = keys["problem"].map(PROBLEM_CODE).to_numpy(dtype=np.int8)
        self.parts["temp"].append(self.labels.add(keys["label"]))
        self.parts["split"].append(split_codes(keys["split"], self.split_aliases))
        self.parts["hash"].append(id_hashes(keys["id"]))
        if self.reader.modality == "image":
            self._probe(batch, problems)
        self.parts["problem"].append(problems)
        self.rows += len(batch)

    def _probe(self, batch: RawBatch, problems: np.ndarray) -> None:
        n = len(batch)
        height, width, gray = np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n, bool)
        if batch.arrays is not None:
            height[:], width[:], gray[:] = batch.arrays.shape[2], batch.arrays.shape[3], batch.arrays.shape[1] == 1
        else:
            for i, data in enumerate(batch.images):
                if problems[i]:
                    continue
                if data is None:
                    problems[i] = PROBLEM_CODE["undecodable_image"]
                    self.probe_problems[self.rows + i] = "no image bytes (null)"
                    continue
                try:
                    height[i], width[i], gray[i] = probe_image(data, self.max_pixels)
                except ImageDecodeError as error:
                    problems[i] = PROBLEM_CODE[error.reason]
                    self.probe_problems[self.rows + i] = str(error)
        for name, values in (("height", height), ("width", width), ("gray", gray)):
            self.parts[name].append(values)

    def array(self, name: str) -> np.ndarray:
        """The (rows,) values of `name` (the scanner lets go of them)."""
        return self.parts.pop(name).finish()


def scan(reader: Reader, config: DataConfig) -> IngestPlan:
    """Pass 1 over `reader`: which rows are usable, their class codes and splits, and the image layout."""
    expected = getattr(reader, "row_count", None)  # optional: readers that know it up front
    scanner = _Scanner(reader, expected if config.limit is None or expected is None else min(expected, config.limit), config.max_image_pixels)
    for batch in limited(reader.batches(with_data=False), config.limit):
        scanner.add(batch)
    if scanner.rows == 0:
        raise ExemplarError(f"{reader.source}: no rows to read. Fix: check data.path and data.kind (currently '{config.kind}').")
    problems = scanner.array("problem")
    temp = scanner.array("temp")
    problems[(problems == 0) & (temp == MISSING)] = PROBLEM_CODE["missing_label"]
    first_of = _mark_duplicate_ids(scanner.array("hash"), problems, _id_batches(reader, config))
    splits = scanner.array("split")
    _mark_bad_splits(splits, problems)
    codes, class_names = _resolve_labels(scanner.labels, temp, problems)
    plan = IngestPlan(problems, codes, splits, first_of, class_names, probe_problems=scanner.probe_problems,
                      split_aliases=dict(scanner.split_aliases))
    for value, rows in scanner.split_aliases.items():
        log.warning("%s: split value %r (%d rows) is read as %s.", reader.source, value, rows,
                    "train" if SPLIT_ALIASES[value] == TRAIN else "test: held out from training, ranked with the test rows")
    _assign_splits(plan, splits, config, reader.source)
    if reader.modality == "image":
        _choose_layout(plan, scanner, config)
    return plan


def _id_batches(reader: Reader, config: DataConfig) -> Iterator[pd.Series]:
    """The ids of every row again, batch by batch (read only when some id hash repeats)."""
    for batch in limited(reader.batches(with_data=False), config.limit):
        yield batch.keys["id"]


def _mark_duplicate_ids(hashes: np.ndarray, problems: np.ndarray, id_batches: Iterable[pd.Series]) -> DuplicateIds:
    """Mark every usable row whose id repeats an earlier row's (`hashes`: (N,) uint64, consumed)."""
    duplicates = find_duplicate_ids(hashes, id_batches)
    repeated = duplicates.rows
    problems[repeated[problems[repeated] == 0]] = PROBLEM_CODE["duplicate_id"]
    return duplicates


def _mark_bad_splits(splits: np.ndarray, problems: np.ndarray) -> None:
    if np.all(splits == NO_SPLIT):
        return
    bad = (splits == BAD_SPLIT) | (splits == NO_SPLIT)
    problems[bad & (problems == 0)] = PROBLEM_CODE["invalid_split"]


def _resolve_labels(labels: LabelCollector, temp: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(N,) int32 class codes (-1 for unusable rows), written over the temporary indexes `temp` ((N,) int32, MISSING = -1)."""
    usable = problems == 0
    mapping, class_names = labels.resolve(_usable_counts(temp, usable, len(labels.keys)))
    codes = np.take(np.append(mapping, -1).astype(np.int32), temp, out=temp, mode="wrap")  # in place; MISSING (-1) wraps to the trailing -1
    problems[usable & (codes < 0)] = PROBLEM_CODE["invalid_label"]
    codes[problems != 0] = -1
    return codes, class_names


def _usable_counts(temp: np.ndarray, usable: np.ndarray, size: int) -> np.ndarray:
    """(size,) usable rows per temporary index, without copying `temp` (shifted by one and back in place)."""
    temp += 1  # MISSING (-1) becomes 0
    counts = bincount(temp, size + 1) - bincount(temp[~usable], size + 1)
    temp -= 1
    return counts[1:]


def _assign_splits(plan: IngestPlan, splits: np.ndarray, config: DataConfig, source: str) -> None:
    usable = plan.problems == 0
    if not usable.any():
        raise ExemplarError(
            f"{source}: none of the {plan.rows_read} rows is usable ({_problem_counts(plan.problems)}). "
            "Fix: check data.label_column, data.id_column and data.split_column against your columns, and the image files."
        )
    if np.all(splits == NO_SPLIT):
        codes = plan.codes if usable.all() else plan.codes[usable]  # no copy for clean inputs
        splits[usable] = np.where(_split_with_singletons(plan, codes, config, source), np.int8(TEST), np.int8(TRAIN))
    plan.splits = splits


def _split_with_singletons(plan: IngestPlan, codes: np.ndarray, config: DataConfig, source: str) -> np.ndarray:
    """(n,) bool test mask over the usable rows' class `codes`, stratified by class. A class with a single
    row cannot be on both sides: its row goes to training (and is logged), where the audit can judge it; in a
    real table a one-row class is most often a mistyped label."""
    counts = bincount(codes, len(plan.class_names))
    single = counts == 1
    if not single.any():
        return stratified_test_mask(codes, config.test_fraction, config.split_seed)  # the same draw as before singletons were kept
    if single.sum() * 2 > len(codes):  # most rows alone in their class: measurements, not a few mistyped labels
        examples = ", ".join(repr(name) for name in np.asarray(plan.class_names, dtype=object)[single][:5])
        raise ExemplarError(
            f"{source}: {int(single.sum())} of the {len(codes)} usable rows are the only row of their class (e.g. {examples}), too "
            "many for a train/test split: is the label column a class label? A measured value (a price, a score) cannot be audited "
            "as classes. Fix: point data.label_column at the class column, bin the values into classes, or give a 'split' column."
        )
    alone = [name for name, one in zip(plan.class_names, single) if one]
    shown = ", ".join(map(repr, alone[:10])) + (" ..." if len(alone) > 10 else "")
    log.warning("%s: %d class(es) have a single row (%s): each is kept as a training row with no test row; "
                "a one-row class is often a mistyped label, and the audit ranks it.", source, len(alone), shown)
    is_test = np.zeros(len(codes), dtype=bool)
    splittable = ~single[codes]
    is_test[splittable] = stratified_test_mask(codes[splittable], config.test_fraction, config.split_seed)
    return is_test


def _choose_layout(plan: IngestPlan, scanner: _Scanner, config: DataConfig) -> None:
    usable = plan.problems == 0
    heights, widths = scanner.array("height")[usable], scanner.array("width")[usable]
    if config.image_size:
        plan.image_size = (int(config.image_size[0]), int(config.image_size[1]))
    else:
        plan.image_size = Counter(zip(heights.tolist(), widths.tolist())).most_common(1)[0][0]
    gray = scanner.array("gray")[usable]
    plan.channels = int(config.channels) if config.channels else (1 if gray.all() else 3)


def _problem_counts(problems: np.ndarray) -> str:
    counts = Counter(PROBLEMS[c] for c in problems.tolist() if c)
    return ", ".join(f"{reason}: {n}" for reason, n in counts.most_common())
