"""Ingestion as a stream: pass 1 (scan.py) plans every row, pass 2 (convert.py) yields canonical
batches. Nothing here writes files: the caller writes ``batches()`` as they come, and the stream
raises ExemplarError before its last batch is handed over when the usable rows cannot train a
classifier, so a caller that writes atomically leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict

import numpy as np
import pyarrow as pa

from exemplar.data.canonical import DatasetInfo, arrow_schema, rows_to_arrow, type_groups
from exemplar.data.config import DataConfig
from exemplar.data.convert import ConvertStats, convert_batch
from exemplar.data.quarantine import count_by_reason, quarantine_frame
from exemplar.data.raw import Reader
from exemplar.data.scan import limited, scan
from exemplar.errors import ExemplarError

MIN_TRAIN_ROWS_PER_CLASS = 1  # a one-row class (often a mistyped label) is kept and audited; none cannot be learnt


class IngestStream:
    """Reads `reader` per `config`; construction runs pass 1 (and raises if the input is unusable)."""

    def __init__(self, reader: Reader, config: DataConfig):
        self.reader, self.config = reader, config
        self.plan = scan(reader, config)
        self.info = self._info()
        self.schema = arrow_schema(self.info)
        self._groups = type_groups(self.schema)
        self.stats = ConvertStats(self.plan.class_names, feature_names=list(self.info.feature_names))
        self.started = self.finished = False

    def _info(self) -> DatasetInfo:
        if self.reader.modality == "image":
            shape = [self.plan.channels, *self.plan.image_size]
            return DatasetInfo("image", self.plan.class_names, image_shape=shape, source=self.reader.source)
        names = list(self.reader.feature_names)
        types = list(getattr(self.reader, "feature_types", None) or ["numeric"] * len(names))
        return DatasetInfo("table", self.plan.class_names, feature_names=names, source=self.reader.source,
                           feature_types=types, encoding=asdict(self.config.encoding))

    def batches(self) -> Iterator[pa.Table]:
        """Canonical rows as Arrow tables with :attr:`schema`; the last one follows the final checks."""
        if self.started:
            raise RuntimeError("IngestStream.batches() can be consumed only once")
        self.started = True
        names = list(self.info.feature_names)
        offset, pending = 0, None
        for batch in limited(self.reader.batches(with_data=True), self.config.limit):
            frame = convert_batch(batch, offset, self.plan, self.stats, names, self.info.column_types)
            offset += len(batch)
            if pending is not None:
                yield pending
            pending = self._to_arrow(frame)
        if offset != self.plan.rows_read:
            raise ExemplarError(f"{self.reader.source} changed while it was read ({self.plan.rows_read} rows, then {offset}). Fix: do not modify the input during ingestion.")
        check_trainable(self.stats.counts[0], self.plan.class_names, self.reader.source, self.quarantine(), self.stats.counts.sum(axis=0))
        self.finished = True
        if pending is not None:
            yield pending

    def _to_arrow(self, frame) -> pa.Table:
        """Canonical rows as Arrow; tables go block by block (cost per column: a slice, however wide)."""
        if self.info.modality == "table":
            return rows_to_arrow(frame, self.schema, self._groups)
        return pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)

    def quarantine(self):
        """The quarantined rows so far (all of them once :meth:`batches` is exhausted)."""
        return quarantine_frame(self.stats.quarantine)

    def summary(self) -> dict:
        """Facts for metrics, MLflow and the report (call after :meth:`batches` is exhausted)."""
        counts, names = self.stats.counts, self.plan.class_names
        quarantine = self.quarantine()
        return {
            "hash": self.stats.hasher.hexdigest(),
            "source": self.info.source,
            "modality": self.info.modality,
            "input_shape": list(self.info.input_shape),
            "num_classes": self.info.num_classes,
            "class_names": list(names),
            "rows_read": self.plan.rows_read,
            "rows": int(self.stats.rows),
            "train_rows": int(counts[0].sum()),
            "test_rows": int(counts[1].sum()),
            "rows_per_class": {name: int(counts[:, k].sum()) for k, name in enumerate(names)},
            "train_only_classes": [name for k, name in enumerate(names) if counts[0, k] > 0 and counts[1, k] == 0],
            "split_aliases": dict(self.plan.split_aliases),
            "quarantined": int(len(quarantine)),
            "quarantined_by_reason": count_by_reason(quarantine),
            "images_resized": int(self.stats.resized),
            "images_recoloured": int(self.stats.recoloured),
            **self._column_facts(),
        }

    def column_warnings(self) -> list[dict]:
        """Tables: one record (column, problem, detail) per all-missing or constant column (over the
        training rows) and per numeric or datetime column with cells that did not parse."""
        unparsed = getattr(self.reader, "unparsed", {})
        found = [
            {"column": name, "problem": "unparsed_cells", "detail": f"{count} cell(s) are not {expected} (e.g. {example!r}) and are treated as missing"}
            for name, (count, example, expected) in unparsed.items()
        ]
        return self.stats.profile.warnings() + found

    def _column_facts(self) -> dict:
        if self.info.modality != "table":
            return {}
        missing = self.stats.profile.missing
        return {
            "feature_types": dict(zip(self.info.feature_names, self.info.column_types)),
            "missing_values": {name: n for name, n in missing.items() if n},
            "rows_with_missing_values": int(self.stats.profile.rows_with_missing),
            "column_warnings": self.column_warnings(),
        }


def check_trainable(train_counts: np.ndarray, class_names: list[str], source: str, quarantine=None,
                    row_counts: np.ndarray | None = None) -> None:
    """Raise unless at least 2 classes have training rows and every class has one (`train_counts`: (K,)).
    A class with a single training row is kept: the audit ranks it (a mistyped label often makes one).
    `row_counts` (K,): rows of each class in the whole table; a class with none (a reviewer relabelled all
    of its rows, e.g. the one row of a mistyped class) is gone from the data, not missing from training."""
    quarantined = "" if quarantine is None or not len(quarantine) else f" after quarantining {len(quarantine)} row(s) ({_reasons(quarantine)})"
    with_rows = [name for name, n in zip(class_names, train_counts) if n > 0]
    if len(with_rows) < 2:
        raise ExemplarError(
            f"{source}: only {len(with_rows)} class(es) ({', '.join(map(repr, with_rows)) or 'none'}) have training rows{quarantined}; "
            "a classifier needs at least 2. Fix: add labelled examples of another class, or check data.label_column."
        )
    present = np.ones(len(class_names), dtype=bool) if row_counts is None else np.asarray(row_counts) > 0
    small = [f"{name!r} ({n})" for name, n, here in zip(class_names, train_counts, present) if here and n < MIN_TRAIN_ROWS_PER_CLASS]
    if small:
        raise ExemplarError(
            f"{source}: class(es) {', '.join(small)} have no training rows{quarantined}, so no model can learn them. "
            "Fix: add training examples of those classes, repair their quarantined rows, or remove those classes from the input."
        )


def _reasons(quarantine) -> str:
    counts = quarantine["reason"].value_counts()
    return ", ".join(f"{reason}: {n}" for reason, n in counts.items())

