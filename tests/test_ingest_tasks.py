"""The ingest and filter tasks: outputs on disk, stage metrics, MLflow dataset input, and no output at all
for an unusable input (through the command line too)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from exemplar.errors import ExemplarError
from flows import cli
from flows.ingest import ingest_flow
from tasks.filter import filter_rows
from tasks.ingest import ingest
from tasks.run import standalone_tracking
from tests.unit.data.makers import png_bytes, tiny_images, write_image_folder


def _cfg(tiny_cfg: dict, **data) -> dict:
    return {**tiny_cfg, "data": {**tiny_cfg["data"], **data}}


@pytest.fixture
def image_root(tmp_path):
    data = tiny_images(per_class=5)
    root = write_image_folder(tmp_path / "images", data)
    (root / "train/cat/broken.png").write_bytes(b"not a png")
    first_train = data["ids"].index("train/cat/000.png")
    (root / "test/dog/copy.png").write_bytes(png_bytes(data["pixels"][first_train]))  # same content as a train cat
    return root


def test_ingest_and_filter_write_their_outputs(tiny_cfg, tmp_path, image_root):
    cfg = _cfg(tiny_cfg, kind="image_folder", path=str(image_root), limit=None)
    run_dir = tmp_path / "run"
    track = standalone_tracking(cfg)
    summary = ingest.fn(cfg, str(run_dir), track)
    filtered = filter_rows.fn(cfg, str(run_dir), track)
    quarantine = pd.read_parquet(run_dir / "quarantine.parquet")
    assert quarantine[["id", "reason"]].values.tolist() == [["train/cat/broken.png", "undecodable_image"]]
    assert quarantine["image"].iat[0] == b"not a png"
    stage = json.loads((run_dir / "stages" / "ingest.json").read_text())
    assert stage["quarantined_by_reason"]["undecodable_image"] == 1 and stage["rows_read"] == stage["rows"] + 1
    assert filtered["exact_duplicates"]["label_conflict_rows"] == 2 and filtered["split_leakage"]["exact_test_rows"] == 1
    keep = pd.read_parquet(run_dir / "keep.parquet").set_index("id")
    assert keep.loc["test/dog/copy.png", "duplicate_of"] == "train/cat/000.png"
    client = MlflowClient(track["uri"])
    run = client.search_runs([client.get_experiment_by_name(track["experiment"]).experiment_id], "tags.`exemplar.stage` = 'ingest'")[0]
    assert run.inputs.dataset_inputs[0].dataset.digest == summary["hash"]
    assert run.data.metrics["quarantined_by_reason.undecodable_image"] == 1.0


def test_unusable_input_writes_nothing(tiny_cfg, tmp_path):
    pd.DataFrame({"label": ["a"] * 6, "x": range(6)}).to_parquet(tmp_path / "one.parquet")
    run_dir = tmp_path / "run"
    cfg = _cfg(tiny_cfg, kind="parquet", path=str(tmp_path / "one.parquet"), limit=None)
    with pytest.raises(ExemplarError, match="only 1 class"):
        ingest.fn(cfg, str(run_dir), standalone_tracking(cfg))
    assert not list(run_dir.rglob("*.parquet")) and not list(run_dir.rglob("*.tmp"))


def test_command_line_reports_bad_data_and_leaves_no_out_dir(prefect_server, capsys, tmp_path):
    pd.DataFrame({"label": ["a"] * 6, "x": range(6)}).to_parquet(tmp_path / "one.parquet")
    out_dir = tmp_path / "out"
    status = cli.run_stage("ingest", ingest_flow, ["data=parquet", f"data.path={tmp_path / 'one.parquet'}", f"out_dir={out_dir}"])
    err = " ".join(capsys.readouterr().err.split())
    assert status == 2 and "one.parquet" in err and "only 1 class" in err and "Fix:" in err
    assert not out_dir.exists()
