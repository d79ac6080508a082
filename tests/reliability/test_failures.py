"""Every failure ends in one paragraph: file-system errors and an unreachable tracking server are user
errors (exit 2), anything else is a bug (exit 1) whose traceback goes to a log named in the message;
runs an earlier, killed run left RUNNING in MLflow are marked FAILED by the next run in that folder."""

from __future__ import annotations

import errno
import json

import pytest

from flows import cli
from tasks import tracking


def _main(tmp_path, runner, *extra):
    return cli.main("stage", runner, lambda result, out_dir: None, [f"out_dir={tmp_path / 'out'}", *extra])


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def test_read_only_out_dir_is_one_paragraph_and_exit_2(tmp_path, capsys):
    def runner(cfg, out_dir):
        raise OSError(errno.EROFS, "Read-only file system", str(out_dir / "dataset.parquet"))

    assert _main(tmp_path, runner) == 2
    err = _err(capsys)
    assert err.startswith("exemplar: error: cannot write or read") and "Read-only file system" in err and "Fix:" in err
    assert "Traceback" not in err


def test_an_internal_error_exits_1_naming_its_log(tmp_path, capsys):
    def runner(cfg, out_dir):
        raise RuntimeError("shape mismatch in fusion")

    assert _main(tmp_path, runner) == 1
    err = _err(capsys)
    assert "internal error" in err and "shape mismatch in fusion" in err and "Traceback" not in err
    log = next((tmp_path / "out" / "logs").glob("error-*.log"))
    assert "RuntimeError: shape mismatch in fusion" in log.read_text() and log.name in err


def test_unreachable_server_stops_at_once_unless_not_required(tmp_path, capsys):
    ran = []
    server = ["tracking.uri=http://127.0.0.1:9", "tracking.timeout_seconds=1"]
    assert _main(tmp_path, lambda cfg, out_dir: ran.append(cfg), *server) == 2
    assert "MLflow tracking server http://127.0.0.1:9 is unreachable" in _err(capsys) and not ran
    assert _main(tmp_path, lambda cfg, out_dir: ran.append(cfg), *server, "tracking.required=false") == 0
    assert ran[0]["tracking"]["uri"] == f"sqlite:///{(tmp_path / 'out').resolve() / 'mlflow.db'}"
    err = _err(capsys)
    assert "tracked locally" in err and "mlflow ui --backend-store-uri" in err and "import-experiment" in err


def test_runs_left_running_by_a_killed_run_are_marked_failed(tmp_path, capsys, isolated_tracking):
    out_dir = tmp_path / "out"
    parent = tracking.create_run(isolated_tracking, "exemplar", "pipeline", tags={"out_dir": str(out_dir)})
    child = tracking.create_run(isolated_tracking, "exemplar", "train-seed0", parent_run_id=parent)
    elsewhere = tracking.create_run(isolated_tracking, "exemplar", "pipeline", tags={"out_dir": str(tmp_path / "other")})
    assert _main(tmp_path, lambda cfg, out_dir: None) == 0
    status = {run: tracking.client(isolated_tracking).get_run(run).info.status for run in (parent, child, elsewhere)}
    assert status == {parent: "FAILED", child: "FAILED", elsewhere: "RUNNING"}
    assert "marked 2 MLflow run(s)" in _err(capsys)


@pytest.mark.parametrize("uri", ["sqlite:///x.db", "file:///tmp/mlruns"])
def test_only_servers_are_probed(uri):
    assert tracking.unreachable(uri, 0.1) is None


def test_the_composed_settings_are_kept_in_the_folder_and_repeat_in_one_argument(tmp_path):
    """out_dir/settings.yaml holds what the command ran with; ``--params`` on it composes the same settings, so
    a later command (the report stage with another recipe) needs no other argument. A refused whole run
    leaves the folder's file as it was."""
    ran = []
    assert cli.main("pipeline", lambda cfg, out_dir: ran.append(cfg), lambda result, out_dir: None,
                    [f"out_dir={tmp_path / 'out'}", "train.epochs=2", "report.fusion.alpha=0.2"]) == 0
    settings = tmp_path / "out" / "settings.yaml"
    again = cli.load_config(["--params", str(settings)])
    assert {k: v for k, v in again.items() if k != "tracking"} == {k: v for k, v in ran[0].items() if k != "tracking"}
    assert cli.load_config(["--params", str(settings), "report.fusion.exclude=[]"])["report"]["fusion"]["exclude"] == []
    (tmp_path / "out" / "manifest.json").write_text(json.dumps({"config": {"train": {**ran[0]["train"], "epochs": 3}}}))
    before = settings.read_bytes()
    assert cli.main("pipeline", lambda cfg, out_dir: ran.append(cfg), lambda result, out_dir: None,
                    [f"out_dir={tmp_path / 'out'}", "train.epochs=2"]) == 2
    assert settings.read_bytes() == before and len(ran) == 1


def test_settings_yaml_leaves_credentials_out_of_the_folder(tmp_path, capsys):
    """A tracking URL with ``user:password@`` is recorded without them (a run folder may be shared or versioned)
    and the file says so; the warning that the server did not answer does not print them either."""
    ran = []
    secret_uri = "http://alice:s3cret@127.0.0.1:9/"
    assert cli.main("pipeline", lambda cfg, out_dir: ran.append(cfg), lambda result, out_dir: None,
                    [f"out_dir={tmp_path / 'out'}", f"tracking.uri={secret_uri}", "tracking.required=false",
                     "tracking.timeout_seconds=0.2"]) == 0
    text = (tmp_path / "out" / "settings.yaml").read_text()
    assert "s3cret" not in text and "alice" not in text and "http://127.0.0.1:9/" in text
    assert "user:password@ part of tracking.uri is left out" in text
    warning = capsys.readouterr().err
    assert "did not answer" in warning and "s3cret" not in warning
    assert cli.load_config(["--params", str(tmp_path / "out" / "settings.yaml")])["tracking"]["uri"] == "http://127.0.0.1:9/"


def test_without_credentials_by_hand():
    from exemplar.settings import without_credentials

    tree = {"a": "https://u:p@host:8/x?q=1", "b": ["s3://k@bucket/p", "ftp://u:p@h/"], "c": "plain/path@2", "d": 3,
            "e": {"f": "http://host/"}}
    clean, keys = without_credentials(tree)
    assert clean == {"a": "https://host:8/x?q=1", "b": ["s3://k@bucket/p", "ftp://h/"], "c": "plain/path@2", "d": 3,
                     "e": {"f": "http://host/"}}
    assert keys == ["a", "b[1]"] and tree["a"] == "https://u:p@host:8/x?q=1"  # a copy; a user without password stays
