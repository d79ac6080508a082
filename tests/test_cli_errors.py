"""User errors end in one paragraph naming the problem and the fix, exit status 2, and no partial out_dir."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd

from flows.pipeline import main
from tests.conftest import TINY_OVERRIDES


def run_main(capsys, args):
    status = main(args)
    return status, " ".join(capsys.readouterr().err.split())


def test_wrong_data_path(capsys, tmp_path):
    out_dir = tmp_path / "out"
    status, err = run_main(capsys, ["data=parquet", f"data.path={tmp_path / 'missing.parquet'}", f"out_dir={out_dir}"])
    assert status == 2
    assert "missing.parquet" in err and "does not exist" in err and "Fix:" in err
    assert not out_dir.exists()


def test_unknown_override(capsys, tmp_path):
    status, err = run_main(capsys, ["train.epochz=3", f"out_dir={tmp_path / 'out'}"])
    assert status == 2
    assert "epochz" in err and "Fix:" in err
    assert not (tmp_path / "out").exists()


def test_parquet_without_label_leaves_no_out_dir(prefect_server, capsys, tmp_path):
    data = tmp_path / "nolabel.parquet"
    pd.DataFrame({"id": ["a", "b"], "target": [0, 1], "x": [0.1, 0.2]}).to_parquet(data)
    out_dir = tmp_path / "out"
    status, err = run_main(capsys, ["data=parquet", f"data.path={data}", f"out_dir={out_dir}", *TINY_OVERRIDES[1:]])
    assert status == 2
    assert "no 'label' column" in err and "target" in err and "Fix:" in err
    assert not out_dir.exists()


def test_command_line_error_is_one_paragraph_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-m", "flows.pipeline", "data=parquet", f"data.path={tmp_path / 'nope.parquet'}", f"out_dir={tmp_path / 'o'}"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    paragraphs = [p for p in done.stderr.strip().split("\n\n") if p.strip()]
    assert len(paragraphs) == 1 and paragraphs[0].startswith("exemplar: error:")
    assert not (tmp_path / "o").exists()
