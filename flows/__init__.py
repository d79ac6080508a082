"""Prefect flows: one per stage, plus ``flows.pipeline`` for the whole DAG.

Importing the package applies quiet, offline environment defaults. When the process was started as
``python -m flows.<stage>`` (or ``flows.pipeline``), the command line is also answered here, before
the stage module imports Prefect, torch and MLflow: ``--help``, ``--cfg job``, and every settings error
(exit 2) come back at once instead of after Prefect's server start (see flows.cli.preflight). Under
``dvc repro`` a stage then runs in the repro's warm stage host when there is one (flows.warm_stages).
"""

import sys

from flows._env import apply_defaults

apply_defaults()


def _started_as() -> str | None:
    """'pipeline' when this process is ``python [flags] -m flows.pipeline ...``, else None."""
    argv = list(getattr(sys, "orig_argv", []))
    if "-m" not in argv[:-1]:
        return None
    module = argv[argv.index("-m") + 1]
    return module.removeprefix("flows.") if module.startswith("flows.") else None


def answer_command_line() -> None:
    """For ``python -m flows.<stage>``: check the settings (flows.cli.preflight), then, under ``dvc repro``,
    hand the stage to the repro's warm stage host if one runs (flows.warm_stages; it exits with the stage's
    status)."""
    stage = _started_as()
    if stage not in ("pipeline", "ingest", "filter", "train", "score", "compress", "report"):
        return
    from flows.cli import preflight

    preflight(stage, sys.argv[1:])
    if stage != "pipeline":
        from flows.warm_stages import delegate

        delegate(f"flows.{stage}", sys.argv[1:])


answer_command_line()
