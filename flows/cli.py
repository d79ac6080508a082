"""Command-line entry: parse overrides, validate, run a flow, and turn user errors into one paragraph.

A user error (bad data, bad setting, unknown override) prints what is wrong and the fix, exits with
status 2, and removes the output folder if this invocation created it. Anything else is a bug and
keeps its traceback (and the output folder, so training can resume).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import gc
import logging
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

from omegaconf import OmegaConf

from exemplar.errors import ExemplarError
from exemplar.settings import closest, unknown_key_message
from flows.config import CONF_DIR, compose, load_params, resolve_out_dir, to_plain, validate

STAGE_MODULES = ("pipeline", "ingest", "filter", "train", "score", "compress", "report")
MOST_USED = (
    "data.path", "data.limit", "model.name", "train.epochs", "train.population", "train.lr", "train.device",
    "score.signals", "compress.sparsities", "report.queue_size", "out_dir", "overwrite", "tracking.uri", "tracking.required",
)
_PREFLIGHT: dict[tuple[str, ...], dict] = {}  # argv -> configuration already validated by preflight()


def usage(name: str) -> str:
    """--help: the command, its options, every config group with its options, and the most used keys."""
    import yaml

    declared = yaml.safe_load((CONF_DIR / "config.yaml").read_text())
    chosen = {k: v for entry in declared.get("defaults", []) if isinstance(entry, dict) for k, v in entry.items()}
    lines = [
        f"usage: python -m flows.{name} [--params params.yaml] [--cfg job] [key=value ...] [group=option ...]",
        "",
        "Settings use Hydra's override grammar, e.g. train.epochs=5 data=parquet data.path=data.parquet out_dir=runs/demo.",
        "Every setting is checked (type, range, unknown keys) before any work starts; errors exit with status 2.",
        "",
        "options:",
        "  -h, --help       show this help and exit",
        "  --params FILE    read the configuration from an already composed file (as DVC writes params.yaml)",
        "  --cfg job        print the composed configuration (after the overrides) and exit",
        "",
        "config groups (group=option; * marks the default):",
    ]
    for group in sorted(p for p in CONF_DIR.iterdir() if p.is_dir()):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        shown = ", ".join(o + ("*" if o == chosen.get(group.name) else "") for o in options)
        lines.append(f"  {group.name:<10} {shown}")
    lines += ["", "most used settings (default):"]
    defaults = to_plain(compose([]))
    for key in MOST_USED:
        node = defaults
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        lines.append(f"  {key:<22} {yaml.safe_dump(node, default_flow_style=True).strip().removesuffix('...').strip()}")
    lines += ["", "All settings: python -m flows.pipeline --cfg job (or conf/). Docs: docs/reliability.md, docs/data.md."]
    return "\n".join(lines)


def render_job(argv: list[str]) -> str:
    """The composed configuration for `argv` (without --cfg job) as YAML, like Hydra's ``--cfg job``."""
    import yaml

    at = argv.index("--cfg")
    if at + 1 >= len(argv) or argv[at + 1] != "job":
        raise ExemplarError("--cfg takes 'job' (print the composed configuration), e.g. --cfg job.")
    params, overrides = parse(argv[:at] + argv[at + 2 :])
    try:
        config = load_params(params, overrides) if params else compose(overrides)
    except ExemplarError:
        raise
    except Exception as error:
        raise ExemplarError(explain_override_error(overrides, error)) from error
    return yaml.safe_dump(OmegaConf.to_container(config, resolve=False), sort_keys=False).rstrip()


def answer_without_running(name: str, argv: list[str]) -> int | None:
    """Handle --help and --cfg job (status 0, or 2 for a bad --cfg), else None."""
    if argv and argv[0] in ("-h", "--help"):
        print(usage(name))
        return 0
    if "--cfg" in argv:
        try:
            print(render_job(argv))
        except ExemplarError as error:
            print_error(error)
            return 2
        return 0
    return None


def preflight(name: str, argv: list[str]) -> None:
    """Run by ``flows/__init__`` when started as ``python -m flows.<name>``, before the stage module
    (and so Prefect, torch, MLflow) is imported: answer --help / --cfg job, and exit 2 on a bad setting
    or a missing input, in well under 2 s. The validated configuration is kept for main()."""
    if name == "pipeline" and argv[:1] == ["compare"]:  # `python -m flows.pipeline compare RUN_A RUN_B`: no settings
        return
    status = answer_without_running(name, argv)
    if status is not None:
        sys.exit(status)
    try:
        _PREFLIGHT[tuple(argv)] = load_config(argv)
    except ExemplarError as error:
        print_error(error)
        sys.exit(2)
    from flows import early_server, repro_server

    # Prefect's server boots on the other core while the stage module imports (under DVC: the repro's shared one)
    early_server.start() or repro_server.start_early()
    atexit.register(skip_final_collection)  # registered first, so it runs last


def skip_final_collection() -> None:
    """At exit of a ``python -m flows.<stage>`` process, after every other exit handler (Prefect's
    log and event flushes, its server's stop): move all objects to the permanent generation, so the
    interpreter's final garbage collection over torch, pydantic and Prefect objects does not run (it
    took 1-5 s after the last line was printed; the process ends either way)."""
    gc.freeze()


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
                near = closest(value, options)
                hint = f"did you mean {' or '.join(near)}? " if near else ""
                return f"unknown option '{value}' for config group '{key}' (in '{override}'): {hint}Fix: use one of {options}."
            continue
        node = default
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(parts[:depth]) or "the top level"
                valid = sorted(node) if isinstance(node, dict) else []
                return f"in override '{override}', {where} has no key '{part}'. " + unknown_key_message(key, ".".join(parts[:depth]), valid)
            node = node[part]
    return f"invalid override(s) {overrides}: {first_line}. Fix: check the spelling against conf/ and Hydra's override grammar."


def print_error(error: Exception | str) -> None:
    text = textwrap.fill(f"exemplar: error: {error}", width=100, break_long_words=False, break_on_hyphens=False)
    print(text, file=sys.stderr)


def quiet_prefect_failures() -> None:
    """User errors are reported once, by us; keep Prefect from also logging their tracebacks."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main(name: str, runner: Callable[[dict, Path], object], report: Callable[[object, Path], None], argv: list[str] | None = None) -> int:
    """Run `runner(cfg, out_dir)` for the command line `argv`; returns the process exit status.

    Every failure ends in one paragraph on stderr: 2 for what the user can fix (settings, data, a folder
    in use or not writable, an unreachable tracking server), 1 for a bug, with the log holding its traceback.
    """
    argv = sys.argv[1:] if argv is None else argv
    status = answer_without_running(name, argv)
    if status is not None:
        return status
    try:
        cfg = copy.deepcopy(_PREFLIGHT[tuple(argv)]) if tuple(argv) in _PREFLIGHT else load_config(argv)
    except ExemplarError as error:
        print_error(error)
        return 2
    out_dir = resolve_out_dir(cfg)
    created = not out_dir.exists()
    quiet_prefect_failures()
    from flows import early_server
    from flows.repro_server import prefect_api_for_dvc

    try:
        with writer_lock(cfg, out_dir):
            prepare_run_dir(cfg, out_dir, whole_run=name == "pipeline")
            prepare_tracking(cfg, out_dir)
            with prefect_api_for_dvc(), without_flow_heartbeats():  # under DVC: one Prefect server for the whole repro
                early_server.adopt(warm_training_imports if name in ("pipeline", "train") else None)
                result = runner(cfg, out_dir)
    except (ExemplarError, OSError) as error:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        print_error(error if isinstance(error, ExemplarError) else explain_os_error(error, out_dir))
        return 2
    except Exception as error:  # a bug: keep the folder (a rerun resumes) and the traceback
        print_error(f"internal error in the {name} run ({type(error).__name__}: {error}). This is a bug, not your "
                    f"data or settings; the traceback is in {write_log(error, out_dir)}. A rerun with the same "
                    "command resumes from what was completed; please report the log.")
        return 1
    report(result, out_dir)
    return 0


@contextlib.contextmanager
def without_flow_heartbeats() -> Iterator[None]:
    """Run this command's flows without Prefect's flow-run heartbeats, unless the user set
    ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``. Heartbeats let a server notice a crashed run of a deployment
    (the served deployment keeps them); a command-line run finds its own abandoned runs (the manifest,
    and MLflow runs marked failed on the next start). Each flow run's heartbeat thread sleeps in 1 s
    steps and is joined when the run ends: measured 0.9 s per flow run, about a dozen per pipeline."""
    if "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" in os.environ:
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def warm_training_imports() -> None:
    """Import what the first optimizer step imports (torch._dynamo, about 1.5 s), while this process
    would otherwise only wait for Prefect's server to start."""
    import torch._dynamo  # noqa: F401


def explain_os_error(error: OSError, out_dir: Path) -> str:
    """One paragraph for a file-system error (read-only or full disk, missing permission, ...)."""
    where = error.filename or out_dir
    return (
        f"cannot write or read {where}: {error.strerror or error}. The run stopped; files already committed in "
        f"{out_dir} are intact. Fix: choose an out_dir on a writable disk with free space (out_dir=/path/with/space), "
        "or fix the folder's permissions, then rerun the same command (it resumes)."
    )


def write_log(error: BaseException, out_dir: Path) -> Path:
    """Write the traceback to out_dir/logs/ (or the temp folder when out_dir is not writable)."""
    import tempfile
    import time
    import traceback

    text = "".join(traceback.format_exception(error))
    name = f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (out_dir / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
            return folder / name
        except OSError:
            continue
    return Path("(no writable folder for the log)")


def prepare_tracking(cfg: dict, out_dir: Path) -> None:
    """Check an MLflow server up front (short timeout): stop with one paragraph, or with
    tracking.required=false switch to a SQLite file in out_dir and say how to replay it. Then mark
    FAILED the runs an earlier, killed run into this folder left RUNNING."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    from exemplar.settings import without_credentials
    from tasks import tracking

    settings = cfg["tracking"]
    uri = tracking.tracking_uri(settings.get("uri"))
    shown = without_credentials(uri)[0]  # messages end up in logs: no user:password@
    problem = tracking.unreachable(uri, float(settings.get("timeout_seconds", 5)))
    if problem and settings.get("required", True):
        raise ExemplarError(
            f"the MLflow tracking server {shown} is unreachable: {problem}. Nothing was run. Fix: start it "
            "(e.g. make mlflow-server), point tracking.uri (or $MLFLOW_TRACKING_URI) at a running one, or add "
            "tracking.required=false to track into out_dir/mlflow.db and copy the runs over later."
        )
    if problem:
        local = tracking.local_uri(out_dir)
        print(f"exemplar: warning: {tracking.replay_hint(local, shown, settings['experiment'])}", file=sys.stderr)
        uri = local
        cfg["tracking"] = {**settings, "uri": local}
    abandoned = tracking.fail_abandoned_runs(uri, settings["experiment"], str(out_dir))
    if abandoned:
        print(f"exemplar: marked {len(abandoned)} MLflow run(s) of a killed earlier run in {out_dir} as FAILED.", file=sys.stderr)


def prepare_run_dir(cfg: dict, out_dir: Path, whole_run: bool) -> None:
    """Finish or undo interrupted commits; for a whole run, refuse a folder written with other settings. Then
    record the composed settings as ``out_dir/settings.yaml``, so a later command can repeat them in one argument
    (``--params out_dir/settings.yaml``, e.g. to re-rank a finished run with another fusion recipe)."""
    from exemplar.settings import without_credentials
    from tasks._io import write_text
    from tasks.layout import SETTINGS_NAME, RunLayout

    if int(os.environ.get("RANK", "0")) == 0:
        RunLayout(out_dir).prepare(cfg, whole_run)
        header = "# The composed settings of the last command that wrote this folder. Repeat them with\n" \
                 f"#   python -m flows.<stage> --params {out_dir / SETTINGS_NAME} [key=value ...]\n"
        recorded, redacted = without_credentials(cfg)
        if redacted:
            header += (f"# the user:password@ part of {', '.join(redacted)} is left out (credentials do not belong in a run folder);\n"
                       "# set MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or the URL again on the command line)\n")
        write_text(header + OmegaConf.to_yaml(OmegaConf.create(recorded)), out_dir / SETTINGS_NAME)


def writer_lock(cfg: dict, out_dir: Path):
    """The run directory's writer lock for this process (DDP ranks other than 0 write nothing: no lock)."""
    import contextlib

    from tasks._lock import RunLock

    if int(os.environ.get("RANK", "0")) != 0:
        return contextlib.nullcontext()
    return RunLock(out_dir, wait_seconds=float(cfg.get("lock_wait_seconds") or 0))


def print_summary(result: object, out_dir: Path) -> None:
    """Nothing more: the stage printed its one line (tasks/progress.py); the full summary is in out_dir/stages/."""


def run_stage(name: str, stage_flow: Callable[..., object], argv: list[str] | None = None) -> int:
    """Entry point of one stage flow: ``python -m flows.<name> [--params params.yaml] [overrides]``."""
    return main(name, lambda cfg, out_dir: stage_flow(cfg, str(out_dir)), print_summary, argv)
