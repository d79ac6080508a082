"""The run directory's integrity rules on real stage tasks (ingest, filter; no training, no Prefect):
staged outputs committed together and listed in manifest.json, interrupted commits finished or undone,
tampered inputs refused, reruns with other settings refused before anything is written, resumes skip
completed stages, and stale temp files are removed."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from exemplar.errors import ExemplarError
from tasks import manifest as records
from tasks.filter import filter_rows
from tasks.ingest import ingest
from tasks.layout import RunLayout
from tasks.train import train


@pytest.fixture()
def cfg(tiny_cfg):
    return {**tiny_cfg, "data": {**tiny_cfg["data"], "limit": 120}}


@pytest.fixture()
def track(isolated_tracking):
    return {"uri": isolated_tracking, "experiment": "run-dir", "parent_run_id": None}


def _snapshot(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".manifest.lock"}


def _ingested(tmp_path, cfg, track) -> RunLayout:
    layout = RunLayout(tmp_path / "run")
    layout.prepare(cfg, whole_run=True)
    ingest.fn(cfg, str(layout.root), track)
    filter_rows.fn(cfg, str(layout.root), track)
    return layout


def test_committed_stages_are_listed_with_the_hash_of_every_output(tmp_path, cfg, track):
    layout = _ingested(tmp_path, cfg, track)
    stages = records.read(layout.root)["stages"]
    assert set(stages["ingest"]["outputs"]) == {"dataset.parquet", "quarantine.parquet", "decisions.parquet", "stages/ingest.json"}
    assert set(stages["filter"]["outputs"]) == {"keep.parquet", "stages/filter.json"}
    assert stages["filter"]["inputs"] == {rel: fp["hash"] for rel, fp in stages["ingest"]["outputs"].items()}
    for entry in stages.values():
        assert entry["status"] == "complete"
        assert all(records.file_hash(layout.root / rel) == fp["hash"] for rel, fp in entry["outputs"].items())
    assert not layout.staging_root.exists()


def test_a_failing_stage_leaves_the_previous_outputs_untouched(tmp_path, cfg, track, monkeypatch):
    layout = _ingested(tmp_path, cfg, track)
    before = _snapshot(layout.root)
    monkeypatch.setattr("tasks.filter.write_json", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        filter_rows.fn({**cfg, "prune": {**cfg["prune"], "near_duplicate_threshold": 0.9}}, str(layout.root), track)
    after = _snapshot(layout.root)
    assert {k: v for k, v in after.items() if k != "manifest.json"} == {k: v for k, v in before.items() if k != "manifest.json"}
    assert records.read(layout.root)["stages"]["filter"]["status"] == "running"  # never read as complete
    with pytest.raises(ExemplarError, match="stage 'filter' did not complete"):
        layout.require("train", cfg)


def test_a_commit_interrupted_after_its_commit_point_is_finished_on_the_next_start(tmp_path, cfg, track, monkeypatch):
    layout = _ingested(tmp_path, cfg, track)
    changed = {**cfg, "prune": {**cfg["prune"], "drop_exact_duplicates": False}}
    real_replace = os.replace
    moved = []

    def replace_then_die(source, target):
        real_replace(source, target)
        if str(source).startswith(str(layout.staging_root)) and not str(target).startswith(str(layout.staging_root)):
            moved.append(target)
            raise KeyboardInterrupt  # as if killed after the first file was moved into place

    monkeypatch.setattr("tasks.layout.os.replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        filter_rows.fn(changed, str(layout.root), track)
    monkeypatch.setattr("tasks.layout.os.replace", real_replace)
    assert len(moved) == 1 and (layout.staging_root / "filter" / ".commit.json").exists()
    layout.recover()
    entry = records.read(layout.root)["stages"]["filter"]
    assert entry["status"] == "complete" and entry["config"]["prune"]["drop_exact_duplicates"] is False
    assert all(records.matches(layout.root / rel, fp) for rel, fp in entry["outputs"].items())
    assert not layout.staging_root.exists()


def test_an_input_changed_after_its_stage_ran_is_refused(tmp_path, cfg, track):
    layout = _ingested(tmp_path, cfg, track)
    keep = pd.read_parquet(layout.keep)
    keep.loc[0, "keep"] = not keep.loc[0, "keep"]
    keep.to_parquet(layout.keep)
    with pytest.raises(ExemplarError, match=r"keep.parquet is missing or is not the file stage 'filter' wrote.*Fix:"):
        train.fn(cfg, str(layout.root), track)


def test_a_stage_run_with_other_upstream_settings_is_refused(tmp_path, cfg, track):
    layout = _ingested(tmp_path, cfg, track)
    other = {**cfg, "data": {**cfg["data"], "test_fraction": 0.3}}
    with pytest.raises(ExemplarError, match=r"stage 'ingest' ran with other settings \(data.test_fraction: 0.2 -> 0.3\)"):
        filter_rows.fn(other, str(layout.root), track)


def test_rerun_with_other_settings_is_refused_before_writing_and_overwrite_starts_afresh(tmp_path, cfg, track):
    layout = _ingested(tmp_path, cfg, track)
    before = _snapshot(layout.root)
    other = {**cfg, "train": {**cfg["train"], "epochs": 7}}
    with pytest.raises(ExemplarError, match=r"train.epochs: 3 -> 7.*overwrite=true"):
        layout.prepare(other, whole_run=True)
    assert _snapshot(layout.root) == before
    layout.prepare({**other, "overwrite": True}, whole_run=True)
    assert sorted(p.name for p in layout.root.iterdir()) == [".manifest.lock", "manifest.json"]
    assert records.read(layout.root)["config"]["train"]["epochs"] == 7


def test_a_changed_input_file_is_named(tmp_path, cfg, track):
    data = tmp_path / "table.csv"
    data.write_text("label,x\n" + "".join(f"{i % 2},{i}\n" for i in range(40)))
    csv_cfg = {**cfg, "data": {**cfg["data"], "kind": "csv", "path": str(data), "limit": None}}
    layout = RunLayout(tmp_path / "run")
    layout.prepare(csv_cfg, whole_run=True)
    layout.prepare(csv_cfg, whole_run=True)  # same settings, same data: resumes
    data.write_text(data.read_text() + "1,99\n")
    with pytest.raises(ExemplarError, match=r"table.csv changed"):
        layout.prepare(csv_cfg, whole_run=True)


def test_a_completed_stage_is_skipped_on_resume(tmp_path, cfg, track):
    layout = _ingested(tmp_path, cfg, track)
    stamp = layout.dataset.stat().st_mtime_ns
    again = ingest.fn(cfg, str(layout.root), track)
    assert layout.dataset.stat().st_mtime_ns == stamp
    assert again == json.loads((layout.stage_metrics("ingest")).read_text())


def test_stale_temp_files_and_uncommitted_staging_are_removed(tmp_path, cfg, track):
    layout = _ingested(tmp_path, cfg, track)
    orphans = [layout.root / ".dataset.parquet.x1.tmp", layout.checkpoints(0) / "epoch_0002.pt.tmp"]
    for path in orphans:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    (layout.staging_root / "score").mkdir(parents=True)
    (layout.staging_root / "score" / "half.parquet").write_bytes(b"partial")
    layout.prepare(cfg, whole_run=True)
    assert not any(p.exists() for p in orphans) and not layout.staging_root.exists()


def test_overwrite_never_empties_a_folder_that_is_not_a_run_folder(tmp_path, cfg):
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(ExemplarError, match="does not look like an exemplar run folder"):
        RunLayout(tmp_path).prepare({**cfg, "overwrite": True}, whole_run=True)
    assert (tmp_path / "thesis.tex").read_text() == "years of work"
