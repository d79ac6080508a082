"""Command-line entry: parse overrides, validate, run a flow, and turn user errors into one paragraph.

A user error (bad data, bad setting, unknown override) prints what is wrong and the fix, exits with
status 2, and removes the output folder if this invocation created it. Anything else is a bug and
keeps its traceback (and the output folder, so training can resume).
"""

from __future__ import annotations

import logging
import shutil
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

from exemplar.errors import ExemplarError
from flows.config import CONF_DIR, compose, load_params, resolve_out_dir, to_plain, validate

USAGE = """usage: python -m flows.{name} [--params params.yaml] [override ...]

Overrides use Hydra's grammar, e.g. train.epochs=5 data=parquet data.path=data.parquet out_dir=runs/demo.
Config groups (conf/): data, model, train, score, prune, compress, report, runner.
With --params FILE the configuration is read from an already composed file (as DVC writes params.yaml)."""


def parse(argv: list[str]) -> tuple[Path | None, list[str]]:
    """Split ``--params FILE`` from the Hydra overrides."""
    if "--params" in argv:
        at = argv.index("--params")
        if at + 1 >= len(argv):
            raise ExemplarError("--params needs a file name, e.g. --params params.yaml.")
        return Path(argv[at + 1]), argv[:at] + argv[at + 2 :]
    return None, list(argv)


def load_config(argv: list[str]) -> dict:
    """The validated, fully resolved configuration for these arguments."""
    params, overrides = parse(argv)
    try:
        config = load_params(params, overrides) if params else compose(overrides)
    except ExemplarError:
        raise
    except Exception as error:  # Hydra/OmegaConf: unknown key, unknown group option, bad grammar
        raise ExemplarError(explain_override_error(overrides, error)) from error
    cfg = to_plain(config)
    validate(cfg)
    return cfg


def explain_override_error(overrides: list[str], error: Exception) -> str:
    """Name the offending override and list what would have been valid."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    default = OmegaConf.to_container(compose([]))
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        parts = key.split(".")
        if len(parts) == 1 and (CONF_DIR / key).is_dir():
            options = sorted(p.stem for p in (CONF_DIR / key).glob("*.yaml"))
            value = override.split("=", 1)[-1]
            if value not in options:
                return f"unknown option '{value}' for config group '{key}' (in '{override}'). Fix: use one of {options}."
            continue
        node = default
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(parts[:depth]) or "the top level"
                valid = sorted(node) if isinstance(node, dict) else []
                return (
                    f"unknown setting '{key}' in override '{override}': '{part}' is not a key of {where}. "
                    f"Fix: use one of {valid} (see conf/ for every setting)."
                )
            node = node[part]
    return f"invalid override(s) {overrides}: {first_line}. Fix: check the spelling against conf/ and Hydra's override grammar."


def print_error(error: Exception) -> None:
    text = textwrap.fill(f"exemplar: error: {error}", width=100, break_long_words=False, break_on_hyphens=False)
    print(text, file=sys.stderr)


def quiet_prefect_failures() -> None:
    """User errors are reported once, by us; keep Prefect from also logging their tracebacks."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main(name: str, runner: Callable[[dict, Path], object], report: Callable[[object, Path], None], argv: list[str] | None = None) -> int:
    """Run `runner(cfg, out_dir)` for the command line `argv`; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE.format(name=name))
        return 0
    try:
        cfg = load_config(argv)
    except ExemplarError as error:
        print_error(error)
        return 2
    out_dir = resolve_out_dir(cfg)
    created = not out_dir.exists()
    quiet_prefect_failures()
    from flows.repro_server import prefect_api_for_dvc

    try:
        with prefect_api_for_dvc():  # under DVC: one Prefect server for the whole repro, not one per stage
            result = runner(cfg, out_dir)
    except ExemplarError as error:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        print_error(error)
        return 2
    report(result, out_dir)
    return 0


def print_summary(result: object, out_dir: Path) -> None:
    """Nothing more: the stage printed its one line (tasks/progress.py); the full summary is in out_dir/stages/."""


def run_stage(name: str, stage_flow: Callable[..., object], argv: list[str] | None = None) -> int:
    """Entry point of one stage flow: ``python -m flows.<name> [--params params.yaml] [overrides]``."""
    return main(name, lambda cfg, out_dir: stage_flow(cfg, str(out_dir)), print_summary, argv)
