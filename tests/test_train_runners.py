"""Task runners for the seeds of a population (conf/runner/): threads by default, Dask on request."""

from __future__ import annotations

import importlib.util

import pytest
from omegaconf import OmegaConf
from prefect.task_runners import ThreadPoolTaskRunner

from exemplar.errors import ExemplarError
from flows.config import CONF_DIR, compose
from flows.runners import RunnerConfig, build_task_runner, runner_config, use_processes

HAS_PREFECT_DASK = importlib.util.find_spec("prefect_dask") is not None
RUNNER_OPTIONS = sorted(p.stem for p in (CONF_DIR / "runner").glob("*.yaml"))


def _composed(option: str) -> dict:
    """``{"runner": section}`` as conf/ composes it (``+runner=`` while config.yaml does not list the group)."""
    prefix = "" if "runner" in compose([]) else "+"
    return {"runner": OmegaConf.to_container(compose([f"{prefix}runner={option}"]))["runner"]}


@pytest.mark.parametrize("option", RUNNER_OPTIONS)
def test_every_runner_option_matches_the_dataclass(option):
    assert RunnerConfig(**_composed(option)["runner"]) == runner_config(_composed(option))


def test_the_default_runs_seeds_one_after_another_on_threads():
    runner = build_task_runner(_composed("threads"))
    assert isinstance(runner, ThreadPoolTaskRunner) and runner._max_workers == 1
    assert isinstance(build_task_runner({}), ThreadPoolTaskRunner)  # configurations without a runner section


@pytest.mark.skipif(HAS_PREFECT_DASK, reason="prefect-dask is installed")
def test_dask_without_prefect_dask_says_what_to_install():
    with pytest.raises(ExemplarError, match=r"pip install prefect-dask"):
        build_task_runner(_composed("dask"))


@pytest.mark.skipif(not HAS_PREFECT_DASK, reason="prefect-dask is not installed")
def test_dask_builds_a_threaded_local_cluster_without_a_prefect_server():
    runner = build_task_runner(_composed("dask"), environ={})
    assert runner.cluster_kwargs["processes"] is False and runner.cluster_kwargs["n_workers"] == 2


def test_dask_worker_processes_only_with_a_prefect_server():
    auto = RunnerConfig(name="dask")
    assert use_processes(auto, {}) is False
    assert use_processes(auto, {"PREFECT_API_URL": "http://127.0.0.1:4200/api"}) is True
    with pytest.raises(ExemplarError, match="PREFECT_API_URL"):
        use_processes(RunnerConfig(name="dask", processes=True), {})


def test_unknown_runner_is_named():
    with pytest.raises(ExemplarError, match="runner.name"):
        runner_config({"runner": {"name": "ray"}})
