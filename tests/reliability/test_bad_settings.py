"""Every bad setting answers with one paragraph naming the key and what is allowed, exit status 2,
before any stage starts: checked in process for the whole table, and through `python -m flows.pipeline`
for a few rows, where the answer must come before Prefect, torch or MLflow is even imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from exemplar.errors import ExemplarError
from flows.cli import load_config
from flows.pipeline import main
from tests.conftest import PROJECT_ROOT

# (overrides, words the message must contain)
BAD = [
    (["train.epochs=three"], ["train.epochs", "whole number", "'three'"]),
    (["train.lr=fast"], ["train.lr", "finite number", "'fast'"]),
    (["compress.sparsities=0.5"], ["compress.sparsities", "list of finite numbers", "0.5"]),
    (["data.image_size=32"], ["data.image_size", "list of whole numbers or null"]),
    (["train.epochs=1e9"], ["train.epochs", "whole number"]),
    (["train.epochs=1000000000"], ["train.epochs", "1..100000"]),
    (["train.lr=nan"], ["train.lr", "not finite"]),
    (["train.lr=inf"], ["train.lr", "not finite"]),
    (["train.lr=-0.1"], ["train.lr", "(0, 10]"]),
    (["train.seed=-1"], ["train.seed", "0.."]),
    (["train.epochs=true"], ["train.epochs", "whole number", "True"]),
    (["report.top_k=-5"], ["report.top_k", "1..1000"]),
    (["+trian.epochs=5"], ["unknown setting 'trian'", "did you mean 'train'"]),
    (["+train.epoch=5"], ["unknown setting 'train.epoch'", "did you mean 'train.epochs'"]),
    (["train.epochz=3"], ["train.epochz", "epochs"]),
    (["data=parqet"], ["unknown option 'parqet'", "parquet"]),
    (["train.population=0"], ["train.population", "1..1000"]),
    (["train.momentum=1.5"], ["train.momentum", "[0, 1)"]),
    (["train.hflip=3"], ["train.hflip", "true or false"]),
    (["train.optimizer=adam"], ["train.optimizer", "sgd"]),
    (["compress.sparsities=[0.5,1.2]"], ["sparsity", "[0, 1)"]),
    (["compress.finetune_lr=nan"], ["compress.finetune_lr", "not finite"]),
    (["score.signals=[loss,nope]"], ["score.signals", "nope"]),
    (["score.batch_size=0"], ["score.batch_size", ">= 1"]),
    (["prune.near_duplicate_threshold=2"], ["prune.near_duplicate_threshold", "(0, 1]"]),
    (["model.dropout=1.0"], ["model.dropout", "[0, 1)"]),
    (["data.test_fraction=0"], ["data.test_fraction", "(0, 1)"]),
    (["data.limit=-3"], ["data.limit", "positive"]),
    (["data=parquet"], ["data.path"]),
    (["data=csv", "data.path=/nonexistent/x.csv"], ["data.path", "does not exist"]),
    (["report.thumbnail_pixels=4"], ["report.thumbnail_pixels", "8..1024"]),
    (["overwrite=yes"], ["overwrite", "true or false"]),
    (["lock_wait_seconds=-1"], ["lock_wait_seconds", "0..604800"]),
    (["tracking.required=maybe"], ["tracking.required", "true or false"]),
    (["tracking.timeout_seconds=0"], ["tracking.timeout_seconds", "(0, 600]"]),
    (["runner.max_workers=0"], ["runner.max_workers", ">= 1"]),
]


@pytest.mark.parametrize(("overrides", "words"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_setting_is_named_with_what_is_allowed(overrides, words):
    with pytest.raises(ExemplarError) as caught:
        load_config(overrides)
    message = str(caught.value)
    assert all(word in message for word in words), message
    assert "\n" not in message.strip() and ("Fix" in message or "use one of" in message or "must" in message)


@pytest.mark.parametrize(("overrides", "words"), BAD[:6], ids=[" ".join(o) for o, _ in BAD[:6]])
def test_main_exits_2_and_writes_nothing(overrides, words, tmp_path, capsys):
    assert main([*overrides, f"out_dir={tmp_path / 'out'}"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("exemplar: error:") and words[0] in err
    assert not (tmp_path / "out").exists()




@pytest.mark.parametrize("overrides", [["train.epochs=three"], ["+trian.epochs=5"], ["train.lr=nan"]])
def test_command_line_answers_before_prefect_or_torch_is_imported(overrides, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flows.pipeline", *overrides, f"out_dir={tmp_path / 'o'}"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )
    assert done.returncode == 2
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"prefect", "torch", "mlflow", "sklearn"}, "a settings error must not wait for heavy imports"
    message = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert message[0].startswith("exemplar: error:") and "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists()


def test_help_lists_groups_options_and_most_used_keys(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "data " in out and "parquet" in out and "digits*" in out and "train.epochs" in out and "--cfg job" in out


def test_cfg_job_prints_the_composed_configuration(capsys):
    assert main(["--cfg", "job", "train.epochs=4"]) == 0
    import yaml

    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["train"]["epochs"] == 4 and "data" in printed
