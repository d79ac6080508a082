"""Progress on the console, for every stage: live bars on a terminal, one line per stage otherwise.

Nothing here goes through ``logging``, so Prefect's logs never see per-batch updates. Stage tasks call
small hooks: :func:`advance` (rows ingested, checkpoints scored, models compressed), :func:`display`
(training's own bar) and :func:`announce` (a line the user must see, e.g. quarantined rows). The stage
flows open the stage's display with :func:`stage` and print its summary with :func:`stage_line`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

_ACTIVE: dict = {"progress": None, "task": None}  # the running stage's display, shared by its threads
_LOCK = threading.RLock()


def is_interactive(stream=None, environ=None) -> bool:
    """Bars are drawn only when stderr is a terminal and ``$CI`` is unset."""
    stream = sys.stderr if stream is None else stream
    environ = os.environ if environ is None else environ
    return bool(getattr(stream, "isatty", lambda: False)()) and not environ.get("CI")


def _console():
    from rich.console import Console

    return Console(stderr=True)


@contextlib.contextmanager
def display() -> Iterator:
    """The live rich ``Progress`` of the running stage, or a new transient one (a terminal is assumed)."""
    with _LOCK:
        active = _ACTIVE["progress"]
    if active is not None:
        yield active
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=_console(), transient=True, redirect_stdout=False, redirect_stderr=False) as bar:
        yield bar


@contextlib.contextmanager
def stage(name: str, enabled: bool | None = None) -> Iterator[None]:
    """Show a bar for stage `name` while the block runs (only on a terminal; nested stages reuse it)."""
    enabled = is_interactive() if enabled is None else enabled
    with _LOCK:
        nested = _ACTIVE["progress"] is not None
    if not enabled or nested:
        yield
        return
    with display() as bar:
        with _LOCK:
            _ACTIVE.update(progress=bar, task=bar.add_task(name, total=None))
        try:
            yield
        finally:
            with _LOCK:
                _ACTIVE.update(progress=None, task=None)


def advance(count: int = 1, total: int | None = None, detail: str | None = None) -> None:
    """Move the stage's bar on by `count` (and grow its total by `total`); a no-op without a terminal."""
    with _LOCK:
        bar, task = _ACTIVE["progress"], _ACTIVE["task"]
        if bar is None:
            return
        if total:
            current = bar.tasks[[t.id for t in bar.tasks].index(task)].total or 0
            bar.update(task, total=current + total)
        bar.update(task, advance=count, **({"description": detail} if detail else {}))


def announce(text: str) -> None:
    """A line the user must see on the console (above any live bar), terminal or not."""
    with _LOCK:
        bar = _ACTIVE["progress"]
    if bar is not None:
        bar.console.print(text, markup=False, highlight=False)
    else:
        print(text, file=sys.stderr, flush=True)


# --- the one line per stage ------------------------------------------------------------------------


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _accuracy(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"


def summary(name: str, result: object) -> str:
    """What the stage did, in a few words (from the stage's returned summary)."""
    r = result if isinstance(result, dict) else {}
    if name == "ingest":
        return f"{r.get('rows', '?')} rows ({r.get('train_rows', '?')} train, {r.get('test_rows', '?')} test), {r.get('num_classes', '?')} classes, {r.get('quarantined', 0)} quarantined"
    if name == "filter":
        return f"{r.get('dropped', '?')} duplicates masked, {r.get('label_conflicts', '?')} label conflicts"
    if name == "train":
        seeds = r.get("seeds", [r] if "seed" in r else [])
        accuracies = ", ".join(_accuracy(s.get("final_test_accuracy")) for s in seeds if isinstance(s, dict))
        return f"{len(seeds)} model(s), test accuracy {accuracies}"
    if name == "score":
        return f"{len(r.get('signals', []))} signals, test accuracy {_accuracy(r.get('test_accuracy'))}"
    if name == "compress":
        return f"{r.get('population', '?')} model(s) x {len(r.get('levels', {}))} compression levels"
    if name == "report":
        metrics = r.get("metrics", {})
        return f"test accuracy {_accuracy(metrics.get('test_accuracy'))}, review first: {', '.join(r.get('review_queue', [])[:3])}"
    return ""


def stage_line(name: str, run_dir: str, result: object, seconds: float) -> None:
    """Print the stage's one line; a stage that quarantined rows also says how many and where."""
    print(f"{name:<8} {seconds:6.1f} s  {summary(name, result)}  -> {_shown(Path(run_dir))}", file=sys.stderr, flush=True)
    quarantined = result.get("quarantined", 0) if isinstance(result, dict) and name == "ingest" else 0
    if quarantined:
        announce(f"ingest: {quarantined} row(s) quarantined, each with its reason: see {_shown(Path(run_dir) / 'quarantine.parquet')}")
