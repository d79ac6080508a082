"""The scheduled deployment carries the cron schedule and the overrides, and rejects bad overrides."""

from __future__ import annotations

import pytest

from exemplar.errors import ExemplarError
from flows.serve import build_deployment


def test_deployment_has_the_cron_schedule_and_overrides():
    deployment = build_deployment("nightly", "0 3 * * *", ["train.epochs=2"])
    assert deployment.parameters == {"overrides": ["train.epochs=2"]}
    assert deployment.schedules[0].schedule.cron == "0 3 * * *"


def test_bad_override_fails_before_serving():
    with pytest.raises(ExemplarError):
        build_deployment("nightly", "0 3 * * *", ["train.nope=1"])


# --- for real: a Prefect server on loopback, the served deployment, one triggered run ----------------

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from tests.conftest import PROJECT_ROOT, TINY_OVERRIDES  # noqa: E402
from tests.servers import free_port, running  # noqa: E402

PREFECT = str(Path(sys.executable).parent / "prefect")
QUIET = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """`prefect server start --host 127.0.0.1` on a free port with its own PREFECT_HOME; stopped by pid."""
    home, port = tmp_path_factory.mktemp("prefect-home"), free_port()
    env = {**QUIET, "PREFECT_HOME": str(home), "PREFECT_API_URL": ""}
    command = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with running(command, f"http://127.0.0.1:{port}/api/health", home / "server.log", env=env, timeout=180):
        yield {**QUIET, "PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}


def wait_for_deployment(name: str, timeout: float = 120):
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            try:
                return client.read_deployment_by_name(name)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def test_served_deployment_completes_a_triggered_run(prefect_api, tmp_path):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    out_dir = tmp_path / "served"
    overrides = [*TINY_OVERRIDES, "train.population=1", f"out_dir={out_dir}"]
    env = {**prefect_api, "PREFECT_RUNNER_POLL_FREQUENCY": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "flows.serve", "--cron", "0 3 * * *", "--name", "test-nightly", *overrides]
    with running(command, f"{prefect_api['PREFECT_API_URL']}/health", tmp_path / "serve.log", env=env, cwd=tmp_path):
        with temporary_settings(updates={PREFECT_API_URL: prefect_api["PREFECT_API_URL"]}):
            deployment = wait_for_deployment("exemplar-scheduled/test-nightly")
            assert deployment.schedules[0].schedule.cron == "0 3 * * *"
            flow_run = run_deployment("exemplar-scheduled/test-nightly", timeout=400, poll_interval=2)
    log = (tmp_path / "serve.log").read_text()[-3000:]
    assert flow_run.state.is_completed(), f"{flow_run.state}\n{log}"
    assert (out_dir / "report.html").is_file() and (out_dir / "scores.parquet").is_file()


def test_prefect_yaml_declares_the_served_deployment():
    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    [declared] = spec["deployments"]
    served = build_deployment(declared["name"], declared["schedules"][0]["cron"], declared["parameters"]["overrides"])
    assert declared["entrypoint"] == "flows/serve.py:scheduled_pipeline"
    assert served.entrypoint.endswith("serve.py:scheduled_pipeline") and served.flow_name == "exemplar-scheduled"
    assert declared["work_pool"]["name"] and served.parameters == declared["parameters"]
