"""`dvc repro` runs the same stage flows as the pipeline, and a second `dvc repro` does nothing.

The project is copied into a fresh git repository so the test never touches this checkout's
artifacts/ or dvc.lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import PROJECT_ROOT

COPIED = ["conf", "flows", "tasks", "exemplar", "dvc.yaml", "params.yaml", ".dvc/config"]
SHRINK = {"data": {"limit": 300}, "train": {"epochs": 2, "checkpoint_every": 1, "population": 2, "crossfit_repeats": 2}}


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dvcproject")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        source, target = PROJECT_ROOT / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target, ignore=ignore) if source.is_dir() else shutil.copy(source, target)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in SHRINK.items():
        params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], root)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], root)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"], root)
    return root


@pytest.fixture(scope="module")
def reproduced(dvc_project: Path) -> Path:
    run(["dvc", "repro"], dvc_project)
    return dvc_project


def test_repro_writes_the_pipeline_outputs(reproduced):
    artifacts = reproduced / "artifacts"
    for name in ["dataset.parquet", "keep.parquet", "scores.parquet", "report.html", "report.json", "metrics.json"]:
        assert (artifacts / name).is_file(), name
    assert len(pd.read_parquet(artifacts / "scores.parquet")) == SHRINK["data"]["limit"]
    assert (reproduced / "dvc.lock").is_file()


def test_second_repro_is_a_no_op(reproduced):
    before = (reproduced / "artifacts" / "report.json").stat().st_mtime_ns
    done = run(["dvc", "repro"], reproduced)
    assert "up to date" in done.stdout
    assert "Running stage" not in done.stdout
    assert (reproduced / "artifacts" / "report.json").stat().st_mtime_ns == before


@pytest.mark.slow
def test_exp_run_with_a_set_param(reproduced):
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], reproduced)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "lock"], reproduced)
    run(["dvc", "exp", "run", "-S", "data.limit=300", "-S", "train.epochs=3", "-S", "train.checkpoint_every=1", "-S", "train.population=2", "-S", "train.crossfit_repeats=2"], reproduced)
    params = yaml.safe_load((reproduced / "params.yaml").read_text())
    assert params["train"]["epochs"] == 3
    assert len(list((reproduced / "artifacts" / "checkpoints" / "seed_0").glob("epoch_*.pt"))) == 3
