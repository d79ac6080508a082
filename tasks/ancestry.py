"""Which ``dvc`` process runs this one (standard library and psutil only: the command line asks it
before Prefect, MLflow or torch are imported)."""

from __future__ import annotations

from pathlib import Path


known_dvc_ancestor: tuple[int, float] | None = None  # set by flows.warm_stages in a stage it runs for a command


def dvc_ancestor() -> tuple[int, float] | None:
    """(pid, start time) of the nearest ancestor process running DVC, or None."""
    if known_dvc_ancestor is not None:
        return known_dvc_ancestor
    import psutil

    try:
        for process in psutil.Process().parents():
            with process.oneshot():
                argv = process.cmdline()[:3]
                if any(Path(arg).name == "dvc" for arg in argv[:2]) or argv[1:3] == ["-m", "dvc"]:
                    return process.pid, process.create_time()
    except (psutil.Error, IndexError):
        return None
    return None
