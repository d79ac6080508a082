"""Reviewer decisions: what a person decided about flagged rows, read back into the next run.

A decisions file is either

- a CSV with columns ``id``, ``action`` (``relabel``, ``remove`` or ``keep``), ``new_label`` (a class
  name, required for ``relabel``) and ``note`` (optional) -- what the report's "Export decisions"
  button writes; the report's spreadsheet export has the same columns plus context columns, and rows
  whose ``action`` is blank are skipped, so the edited spreadsheet is a decisions file too; or
- a Label Studio JSON export of the tasks the report exported (full or JSON-MIN): the chosen class in
  the ``label`` control relabels a row when it differs from the given label and keeps it otherwise;
  a choice ``remove`` in an ``action`` control removes it.

:func:`read_decisions` checks the file's form (at configuration time, before any work);
:func:`check_labels` and :func:`check_ids` check it against the data during ingestion. Relabels are
applied to the canonical rows as they stream (:class:`Relabeller`); removals become a ``keep=False``
mask with ``drop_reason="reviewer_removed"`` in the filter stage (:func:`mask_removed`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from exemplar.data.canonical import dataset_hash
from exemplar.errors import ExemplarError, describe_ids

ACTIONS = ("relabel", "remove", "keep")
COLUMNS = ["id", "action", "new_label", "note"]
REMOVED = "reviewer_removed"  # drop_reason of a row a reviewer removed
FIX = "Fix: export the file again from the report's review queue, or edit it so that every row has an id, an action and, for relabel, a class name."


@dataclass(frozen=True)
class Decisions:
    """One row per decided id: ``id``, ``action``, ``new_label`` ('' unless relabel), ``note``."""

    table: pd.DataFrame
    source: str

    @property
    def relabels(self) -> dict[str, str]:
        chosen = self.table[self.table["action"] == "relabel"]
        return dict(zip(chosen["id"], chosen["new_label"]))

    @property
    def removals(self) -> set[str]:
        return set(self.table.loc[self.table["action"] == "remove", "id"])

    def counts(self) -> dict[str, int]:
        return {action: int((self.table["action"] == action).sum()) for action in ACTIONS}


def read_decisions(path: str | Path) -> Decisions:
    """Parse and check the form of a decisions CSV or Label Studio JSON export; raises ExemplarError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ExemplarError(f"decisions file '{path}' does not exist. Fix: pass the absolute path of the decisions.csv the report exported, e.g. decisions=/abs/path/decisions.csv.")
    text = path.read_text(encoding="utf-8-sig")
    try:
        frame = _label_studio(json.loads(text), path) if path.suffix.lower() == ".json" else _csv(text, path)
    except (json.JSONDecodeError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ExemplarError(f"decisions file '{path}' cannot be parsed ({error}). {FIX}") from error
    return Decisions(_checked(frame, path), str(path))


def _csv(text: str, path: Path) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    missing = [c for c in ("id", "action") if c not in frame.columns]
    if missing:
        raise ExemplarError(f"decisions file '{path}' has no column(s) {missing} (columns found: {', '.join(map(str, frame.columns)) or 'none'}). {FIX}")
    for column in ("new_label", "note"):
        if column not in frame.columns:
            frame[column] = ""
    frame = frame[COLUMNS].apply(lambda c: c.str.strip())
    frame["action"] = frame["action"].str.lower()
    return frame[frame["action"] != ""]


def _checked(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Every action known, a class name on every relabel, each id at most once, no empty id."""
    bad = frame[~frame["action"].isin(ACTIONS)]
    if len(bad):
        raise ExemplarError(f"decisions file '{path}': action(s) {sorted(set(bad['action']))} for id(s) {describe_ids(bad['id'])} are not one of {list(ACTIONS)}. {FIX}")
    if (frame["id"] == "").any():
        raise ExemplarError(f"decisions file '{path}' has {int((frame['id'] == '').sum())} row(s) with an action but no id. {FIX}")
    unlabelled = frame[(frame["action"] == "relabel") & (frame["new_label"] == "")]
    if len(unlabelled):
        raise ExemplarError(f"decisions file '{path}': relabel without a new_label for id(s) {describe_ids(unlabelled['id'])}. {FIX}")
    repeated = frame[frame["id"].duplicated()]["id"]
    if len(repeated):
        raise ExemplarError(f"decisions file '{path}' decides id(s) {describe_ids(repeated.unique())} more than once. Fix: keep one row per id.")
    frame = frame.assign(new_label=np.where(frame["action"] == "relabel", frame["new_label"], ""))
    return frame.reset_index(drop=True)


def _label_studio(payload: object, path: Path) -> pd.DataFrame:
    """Decisions from a Label Studio export (full JSON, or JSON-MIN) of the report's tasks."""
    if not isinstance(payload, list) or not all(isinstance(t, dict) for t in payload):
        raise ExemplarError(f"decisions file '{path}' is JSON but not a Label Studio export (a list of tasks). {FIX}")
    rows = [row for row in (_task_decision(task, path) for task in payload) if row is not None]
    return pd.DataFrame(rows, columns=COLUMNS) if rows else pd.DataFrame(columns=COLUMNS, dtype=str)


def _task_decision(task: dict, path: Path) -> dict | None:
    data = task.get("data", task)
    row_id = str(data.get("exemplar_id", "")).strip()
    if not row_id:
        raise ExemplarError(f"decisions file '{path}': a Label Studio task has no 'exemplar_id' in its data (keys: {sorted(data)}). Fix: import the tasks the report exported (they carry exemplar_id), then export them.")
    choices = _choices(task)
    if not choices:
        return None
    note = str(choices.get("note", ""))
    if choices.get("action", "").lower() == "remove":
        return {"id": row_id, "action": "remove", "new_label": "", "note": note}
    label = choices.get("label", "")
    if not label:
        return None
    changed = label != str(data.get("given_label", ""))
    return {"id": row_id, "action": "relabel" if changed else "keep", "new_label": label if changed else "", "note": note}


def _choices(task: dict) -> dict[str, str]:
    """{control name: first chosen value} of the task's last annotation that was not cancelled."""
    if "annotations" not in task:  # JSON-MIN: the controls are keys of the task itself
        return {k: _first(task[k]) for k in ("label", "action", "note") if k in task}
    kept = [a for a in task["annotations"] if not a.get("was_cancelled")]
    if not kept:
        return {}
    chosen = {}
    for result in kept[-1].get("result", []):
        value = result.get("value", {})
        chosen[result.get("from_name", "")] = _first(value.get("choices", value.get("text", "")))
    return chosen


def _first(value: object) -> str:
    if isinstance(value, dict) and "choices" in value:
        value = value["choices"]
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()


def check_labels(decisions: Decisions, class_names: list[str]) -> None:
    """Raise unless every ``new_label`` is one of the data's class names."""
    unknown = {row_id: label for row_id, label in decisions.relabels.items() if label not in set(class_names)}
    if unknown:
        shown = ", ".join(f"{k!r} -> {v!r}" for k, v in list(unknown.items())[:10])
        raise ExemplarError(f"decisions file '{decisions.source}' relabels to class name(s) the data does not have ({shown}); the classes are {class_names}. Fix: use one of those names in new_label.")


def check_ids(decisions: Decisions, seen: Collection[str], quarantined: dict[str, str]) -> None:
    """Raise unless every decided id is a row of the data (`seen`); names quarantined ones with their reason."""
    missing = [i for i in decisions.table["id"] if i not in seen]
    if not missing:
        return
    held = [f"{i!r} ({quarantined[i]})" for i in missing if i in quarantined][:10]
    detail = f"; quarantined, so not in the data: {', '.join(held)}" if held else ""
    raise ExemplarError(f"decisions file '{decisions.source}' names {len(missing)} id(s) that are not rows of this data: {describe_ids(missing)}{detail}. Fix: run on the same data (and data.limit) as the report the decisions came from, or delete those rows from the file.")


@dataclass
class Relabeller:
    """Applies a file's relabels to canonical Arrow batches as they stream, and keeps the record.

    ``changes`` lists (id, split, old label name, new label name) of every relabel applied;
    ``seen`` maps every decided id that streamed past to its (split, label name before any relabel),
    to check the decided ids afterwards and to record what each decision found.
    """

    decisions: Decisions
    class_names: list[str]
    changes: list[tuple[str, str, str, str]] = field(default_factory=list)
    seen: dict[str, tuple[str, str]] = field(default_factory=dict)
    old_rows: list[pd.DataFrame] = field(default_factory=list)
    new_rows: list[pd.DataFrame] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.decided = set(self.decisions.table["id"])
        self.targets = self.decisions.relabels

    def __call__(self, table: pa.Table) -> pa.Table:
        ids = pd.Series(table.column("id").to_pylist(), dtype=str)
        decided = ids.isin(self.decided).to_numpy()
        if decided.any():
            picked = table.filter(pa.array(decided)).select(["id", "split", "label_name"]).to_pylist()
            self.seen.update({r["id"]: (r["split"], r["label_name"]) for r in picked})
        targets = ids.map(self.targets)
        hit = targets.notna().to_numpy()
        if not hit.any():
            return table
        code_of = {name: code for code, name in enumerate(self.class_names)}
        labels = np.asarray(table.column("label").to_numpy(), dtype=np.int64).copy()
        names = np.asarray(table.column("label_name").to_pylist(), dtype=object)
        keys = table.select(["id", "label", "split", "content_hash"]).to_pandas()
        self.old_rows.append(keys[hit])
        for row in np.flatnonzero(hit):
            self.changes.append((ids.iat[row], keys["split"].iat[row], str(names[row]), targets.iat[row]))
        labels[hit] = [code_of[name] for name in targets[hit]]
        names[hit] = targets[hit].to_numpy()
        self.new_rows.append(keys[hit].assign(label=labels[hit]))
        table = table.set_column(table.schema.get_field_index("label"), "label", pa.array(labels, pa.int64()))
        return table.set_column(table.schema.get_field_index("label_name"), "label_name", pa.array(names.tolist(), pa.string()))

    def check_ids(self, quarantine: pd.DataFrame) -> None:
        """Raise unless every decided id streamed past (`quarantine`: the ingest's quarantine table)."""
        check_ids(self.decisions, self.seen, dict(zip(quarantine["id"].astype(str), quarantine["reason"])))

    def summarize(self, summary: dict) -> dict:
        """The ingest summary with the relabels accounted for (dataset hash, rows per class) and a
        ``decisions`` entry: the file, actions by kind, and how many labels actually changed."""
        record = self.record()
        facts = {"source": self.decisions.source, **self.decisions.counts(),
                 "relabelled": int((record["changed"] & (record["action"] == "relabel")).sum())}
        return {**self._adjusted(summary), "decisions": facts, "decisions_relabelled": facts["relabelled"]}

    def _adjusted(self, summary: dict) -> dict:
        """Dataset hash (AdHash: minus the old rows' digests, plus the new ones') and rows per class."""
        if not self.old_rows:
            return summary
        old, new = pd.concat(self.old_rows), pd.concat(self.new_rows)
        total = (int(summary["hash"], 16) - int(dataset_hash(old), 16) + int(dataset_hash(new), 16)) % (1 << 128)
        per_class = dict(summary["rows_per_class"])
        for _, _, before, after in self.changes:
            per_class[before] -= 1
            per_class[after] += 1
        return {**summary, "hash": f"{total:032x}", "rows_per_class": per_class}

    def record(self) -> pd.DataFrame:
        """The applied-decisions table (``decisions.parquet``): id, action, new_label, note, split,
        old_label, changed (a relabel to the label the row already had is not a change)."""
        table = self.decisions.table.copy()
        table["split"] = [self.seen.get(i, ("", ""))[0] for i in table["id"]]
        table["old_label"] = [self.seen.get(i, ("", ""))[1] for i in table["id"]]
        table["changed"] = (table["action"] == "remove") | ((table["action"] == "relabel") & (table["old_label"] != table["new_label"]))
        return table


def empty_record() -> pd.DataFrame:
    """The applied-decisions table of a run without decisions."""
    return pd.DataFrame({c: pd.Series(dtype=str) for c in [*COLUMNS, "split", "old_label"]}).assign(changed=pd.Series(dtype=bool))


def mask_removed(mask: pd.DataFrame, removals: set[str]) -> tuple[pd.DataFrame, int]:
    """The keep mask with every removed id masked (``keep=False``, ``drop_reason="reviewer_removed"``
    unless already dropped for another reason); returns (mask, number of rows newly masked)."""
    mask = mask.copy()
    hit = mask["id"].isin(removals).to_numpy()
    newly = hit & mask["keep"].to_numpy(dtype=bool)
    mask.loc[newly, "keep"] = False
    mask.loc[newly, "drop_reason"] = REMOVED
    return mask, int(newly.sum())


def apply_removals(mask: pd.DataFrame, summary: dict, record: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The filter stage's mask and summary after the removals in the applied-decisions `record`:
    ``reviewer_removed`` counts rows newly masked, and kept/dropped/dropped_by_reason follow."""
    mask, removed = mask_removed(mask, set(record.loc[record["action"] == "remove", "id"]))
    by_reason = {**summary["dropped_by_reason"], **({REMOVED: removed} if removed else {})}
    kept = int(mask["keep"].sum())
    return mask, {**summary, "kept": kept, "dropped": int(len(mask) - kept), "dropped_by_reason": by_reason, "reviewer_removed": removed}
