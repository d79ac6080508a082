"""Task runners that spread the seeds of a model population (``conf/runner/``).

- ``threads`` (default): Prefect's thread pool with ``max_workers`` threads. With 1 worker the seeds run
  one after another and every run is bit-reproducible; with more, seeds overlap in threads of one
  process, where torch's global RNG (dropout) is shared, so runs are no longer bit-reproducible.
- ``dask``: prefect-dask's ``DaskTaskRunner`` on a local cluster of ``max_workers`` workers, or on the
  scheduler at ``address``. Worker processes need a real Prefect server (``PREFECT_API_URL``): with
  the temporary server each worker would try to start its own. So ``processes: null`` means worker
  processes when ``PREFECT_API_URL`` is set and threads inside one process otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from exemplar.errors import ExemplarError

RUNNERS = ("threads", "dask")


@dataclass
class RunnerConfig:
    name: str = "threads"  # threads | dask
    max_workers: int = 1  # threads: pool size; dask: workers of the local cluster
    processes: bool | None = None  # dask: worker processes (null: only when PREFECT_API_URL is set)
    address: str | None = None  # dask: connect to this running scheduler instead of a local cluster

    def validate(self) -> None:
        if self.name not in RUNNERS:
            raise ExemplarError(f"runner.name must be one of {RUNNERS}, got '{self.name}'. Fix: e.g. runner=threads.")
        if self.max_workers < 1:
            raise ExemplarError(f"runner.max_workers must be >= 1, got {self.max_workers}.")


def runner_config(cfg: dict) -> RunnerConfig:
    """The validated ``runner`` section (the sequential default when the configuration has none)."""
    config = RunnerConfig(**(cfg.get("runner") or {}))
    config.validate()
    return config


def use_processes(config: RunnerConfig, environ: Mapping[str, str]) -> bool:
    """Whether Dask workers are processes; processes without a Prefect server are a user error."""
    has_server = bool(environ.get("PREFECT_API_URL"))
    if config.processes is None:
        return has_server
    if config.processes and not has_server:
        raise ExemplarError(
            "runner.processes=true needs a running Prefect server: with the temporary one every Dask worker "
            "process starts its own and times out. Fix: `prefect server start` and export PREFECT_API_URL, "
            "or set runner.processes=false."
        )
    return config.processes


def build_task_runner(cfg: dict, environ: Mapping[str, str] | None = None):
    """The Prefect task runner for ``cfg['runner']``."""
    config = runner_config(cfg)
    if config.name == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=config.max_workers)
    return _dask_runner(config, os.environ if environ is None else environ)


def _dask_runner(config: RunnerConfig, environ: Mapping[str, str]):
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as error:
        raise ExemplarError(
            "runner=dask needs the prefect-dask package, which is not installed. "
            "Fix: `pip install prefect-dask==0.3.7` (or use runner=threads)."
        ) from error
    if config.address:
        return DaskTaskRunner(address=config.address)
    processes = use_processes(config, environ)
    cluster = {"n_workers": config.max_workers, "processes": processes, "threads_per_worker": 1}
    return DaskTaskRunner(cluster_kwargs=cluster)
