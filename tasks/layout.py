"""Where each stage reads and writes inside a run directory (one place, so stages agree), and the
run directory's integrity rules (docs/reliability.md):

- a stage's outputs are written into ``.staging/<stage>/`` and committed together: a commit record is
  renamed into place (the commit point), the files are renamed next to it, then the manifest lists them;
  a kill before the commit point leaves nothing, after it the next start finishes the commit;
- a stage refuses inputs that ``manifest.json`` does not list as complete, with these settings and
  these bytes, and a rerun with matching settings skips stages already complete (resume);
- a rerun into a folder written with other settings or data is refused before anything is written,
  unless ``overwrite=true`` (which empties it first);
- training writes its checkpoints and dynamics in place (it resumes from them): a checkpoint counts only
  when every epoch up to it has its dynamics, and score refuses a dynamics set with a hole.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from exemplar.errors import ExemplarError
from tasks import faults
from tasks import manifest as records

DYNAMICS_PATTERN = re.compile(r"^epoch_(\d{4,})\.parquet$")
CHECKPOINT_PATTERN = re.compile(r"^epoch_(\d{4,})\.pt$")

# stage -> (config sections its results depend on, upstream stages whose outputs it reads)
STAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ingest": (("data", "decisions"), ()),
    "filter": (("prune", "decisions"), ("ingest",)),
    "train": (("train", "model"), ("ingest", "filter")),
    "score": (("score",), ("ingest", "filter", "train")),
    "crossfit": (("train", "model"), ("ingest", "filter")),  # the cross-fitted population (tasks/population.py)
    "compress": (("compress",), ("ingest", "filter", "crossfit")),
    "report": (("report",), ("ingest", "filter", "train", "score", "compress")),
}
IN_PLACE = ("train", "crossfit")  # resumable from its own files: written in place, recorded when a seed finishes
ALWAYS_RUN = ("report",)  # cheap, and it logs the report to the current MLflow run: never skipped
WORK_DIRS = ("checkpoints", "dynamics", "compressed")  # resumable caches, shared into staging as links
SETTINGS_NAME = "settings.yaml"  # the composed settings of the last command that wrote the folder (usable as --params)
PRIVATE = (records.MANIFEST_NAME, ".manifest.lock", ".exemplar.lock", ".staging", SETTINGS_NAME)
COMMIT_RECORD = ".commit.json"


class RunLayout:
    """Paths of every file the pipeline produces under `root`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    dataset = property(lambda self: self.root / "dataset.parquet")
    keep = property(lambda self: self.root / "keep.parquet")
    checkpoints_root = property(lambda self: self.root / "checkpoints")
    dynamics_root = property(lambda self: self.root / "dynamics")
    signal_scores = property(lambda self: self.root / "scores" / "signals.parquet")
    compression_scores = property(lambda self: self.root / "scores" / "compression.parquet")
    scores = property(lambda self: self.root / "scores.parquet")
    report_html = property(lambda self: self.root / "report.html")
    report_json = property(lambda self: self.root / "report.json")
    metrics = property(lambda self: self.root / "metrics.json")
    headline = property(lambda self: self.root / "headline.json")  # the headline metrics alone (DVC's metrics file)

    def checkpoints(self, seed: int) -> Path:
        return self.checkpoints_root / f"seed_{seed}"

    def dynamics(self, seed: int) -> Path:
        return self.dynamics_root / f"seed_{seed}"

    stages = property(lambda self: self.root / "stages")

    def stage_metrics(self, stage: str) -> Path:
        return self.stages / f"{stage}.json"

    influence_topk = property(lambda self: self.root / "influence_topk.parquet")

    # compression stage (appended)
    compression_results = property(lambda self: self.root / "compression.parquet")
    compressed_root = property(lambda self: self.root / "compressed")
    # ingest stage (appended): rows that could not be used, with the reason
    quarantine = property(lambda self: self.root / "quarantine.parquet")
    # reviewer decisions applied by ingest (relabels) and filter (removals), read by the report
    decisions = property(lambda self: self.root / "decisions.parquet")
    # population (appended): the cross-fitted models and their folds
    crossfit_folds = property(lambda self: self.root / "crossfit_folds.parquet")

    def crossfit_checkpoints(self, member: int) -> Path:
        return self.checkpoints_root / f"crossfit_{member}"

    # --- training: a checkpoint and its epoch's dynamics are one unit ---------------------------------

    def save_checkpoint(self, seed: int, epoch: int, state: dict) -> None:
        """Write one epoch's checkpoint atomically (its dynamics follow; see resume_checkpoint)."""
        from exemplar.training.checkpoints import checkpoint_path, save_checkpoint

        save_checkpoint(state, checkpoint_path(self.checkpoints(seed), epoch))
        faults.reached(f"checkpoint:{seed}:{epoch}")

    def dynamics_file(self, seed: int, epoch: int) -> Path:
        """The per-example dynamics of one (1-based) epoch of one seed."""
        return self.dynamics(seed) / f"epoch_{epoch:04d}.parquet"

    def dynamics_epochs(self, seed: int) -> list[int]:
        """Epochs whose dynamics file is complete on disk (temp files never match), ascending."""
        folder = self.dynamics(seed)
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := DYNAMICS_PATTERN.match(p.name)))

    def resume_checkpoint(self, seed: int) -> Path | None:
        """The newest checkpoint a resumed run may start from: one whose epoch and every epoch before
        it have their dynamics on disk. A run killed between a checkpoint and that epoch's dynamics
        (or that lost a dynamics file) resumes earlier and redoes the epochs whose dynamics are missing."""
        from exemplar.training.checkpoints import list_checkpoints

        have = set(self.dynamics_epochs(seed))
        usable = None
        for path in list_checkpoints(self.checkpoints(seed)):
            epoch = int(CHECKPOINT_PATTERN.match(path.name).group(1))
            if all(e in have for e in range(1, epoch + 1)):
                usable = path
        return usable

    def complete_dynamics(self, seed: int, epochs: int) -> list[Path]:
        """The dynamics files of epochs 1..`epochs` of one seed; raises naming any missing epoch
        (a scorer must never read a set with holes: forgetting and data maps would silently change)."""
        have = set(self.dynamics_epochs(seed))
        missing = [e for e in range(1, epochs + 1) if e not in have]
        if missing:
            raise ExemplarError(
                f"{self.dynamics(seed)} lacks the training dynamics of epoch(s) {missing} (of 1..{epochs}), so the "
                "scores would be computed from an incomplete history. Fix: rerun the train stage on this out_dir "
                "(it redoes the missing epochs), or start afresh with overwrite=true."
            )
        return [self.dynamics_file(seed, e) for e in range(1, epochs + 1)]

    # --- the manifest: what each stage produced, checked before anything reads it ---------------------

    staging_root = property(lambda self: self.root / ".staging")

    def prepare(self, cfg: dict, whole_run: bool) -> None:
        """Called under the writer lock before any stage: finish or undo interrupted commits, remove
        stale temp files, and (for a whole run) refuse a folder written with other settings or data
        unless ``overwrite=true``, which empties it. Writes nothing when it refuses."""
        self.root.mkdir(parents=True, exist_ok=True)
        if whole_run and cfg.get("overwrite"):
            foreign = sorted(p.name for p in self.root.iterdir() if p.name not in PRIVATE)
            if foreign and records.read(self.root) is None:
                raise ExemplarError(
                    f"out_dir {self.root} holds {foreign[:5]} but no manifest.json: it does not look like an exemplar "
                    "run folder, so overwrite=true will not empty it. Fix: choose a new out_dir, or delete the folder yourself."
                )
            self._empty()
        self.recover()
        if not whole_run:
            return
        manifest = records.read(self.root)
        problems = self._rerun_differences(manifest, cfg)
        if problems:
            shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
            raise ExemplarError(
                f"out_dir {self.root} was written with other settings or data ({shown}). Resuming would mix "
                "two runs' results. Fix: choose a new out_dir, use the same settings, or add overwrite=true to "
                "empty the folder and start afresh."
            )
        if manifest is None:
            with records.updating(self.root) as fresh:
                fresh.update(config=records.result_config(cfg), data=records.data_fingerprint(cfg["data"].get("path")))

    def _rerun_differences(self, manifest: dict | None, cfg: dict) -> list[str]:
        if manifest is None:
            extra = sorted(p.name for p in self.root.iterdir() if p.name not in PRIVATE)
            return [f"it holds {extra[:5]} but no manifest.json"] if extra else []
        recorded = manifest.get("config", {})
        wanted = {key: value for key, value in records.result_config(cfg).items() if key in recorded}
        found = records.differences(recorded, wanted)
        return found + records.data_differences(manifest.get("data", {}), cfg["data"].get("path"))

    def _empty(self) -> None:
        for path in self.root.iterdir():
            if path.name == ".exemplar.lock":
                continue
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()

    def recover(self) -> None:
        """Finish commits that passed their commit point, drop the others, delete orphan temp files."""
        if self.staging_root.is_dir():
            for staged in sorted(self.staging_root.iterdir()):
                self._finish_or_drop(staged)
            with contextlib.suppress(OSError):
                self.staging_root.rmdir()
        for folder, names, files in os.walk(self.root):
            names[:] = [n for n in names if n != ".staging"]
            for name in files:
                if name.endswith(".tmp"):
                    Path(folder, name).unlink(missing_ok=True)

    def _finish_or_drop(self, staged: Path) -> None:
        if (staged / COMMIT_RECORD).exists():
            self._roll_forward(staged)
        else:
            shutil.rmtree(staged, ignore_errors=True)

    def entry_names(self, stage: str, cfg: dict) -> list[str]:
        """Manifest entries of a stage: one per model for train (``train_seed<s>``)."""
        if stage != "train":
            return [stage]
        first = int(cfg["train"]["seed"])
        return [f"train_seed{s}" for s in range(first, first + int(cfg["train"].get("population", 1)))]

    def stage_settings(self, stage: str, cfg: dict, seed: int | None = None) -> dict:
        """The settings a stage's results depend on (train: per seed, population left out)."""
        settings = {name: cfg.get(name) for name in STAGES[stage][0]}
        if stage == "train":
            train = {k: v for k, v in cfg["train"].items() if k != "population"}
            settings["train"] = {**train, "seed": int(cfg["train"]["seed"]) if seed is None else seed}
        return settings

    def require(self, stage: str, cfg: dict) -> dict[str, str]:
        """Hashes of the upstream outputs `stage` reads; raises unless every upstream stage completed
        with these settings and its files are unchanged. A folder with no manifest (made by hand) is read
        as is; under DVC (``$DVC_ROOT``) DVC checks the inputs by hash itself and may restore them from
        its cache, so only presence in the folder is checked there."""
        manifest = records.read(self.root)
        if manifest is None or os.environ.get("DVC_ROOT"):
            return {}
        inputs: dict[str, str] = {}
        for upstream in STAGES[stage][1]:
            for name in self.entry_names(upstream, cfg):
                seed = int(name.removeprefix("train_seed")) if upstream == "train" else None
                entry = manifest["stages"].get(name)
                problem = self._entry_problem(name, entry, self.stage_settings(upstream, cfg, seed))
                if problem:
                    raise ExemplarError(
                        f"cannot run {stage} in {self.root}: {problem}. Its outputs are not inputs this run may "
                        f"use. Fix: rerun the pipeline on this out_dir (it redoes what is missing), or run "
                        f"`python -m flows.{upstream}` with the same settings first; overwrite=true starts afresh."
                    )
                inputs.update({rel: fp["hash"] for rel, fp in entry["outputs"].items()})
        return inputs

    def _entry_problem(self, name: str, entry: dict | None, settings: dict) -> str | None:
        if entry is None:
            return f"stage '{name}' has not run here"
        if entry["status"] != "complete":
            return f"stage '{name}' did not complete (status: {entry['status']})"
        if entry["config_hash"] != records.config_hash(settings):
            changed = records.differences(entry["config"], settings)
            return f"stage '{name}' ran with other settings ({'; '.join(changed[:5])})"
        for rel, recorded in entry["outputs"].items():
            if not records.matches(self.root / rel, recorded):
                return f"{rel} is missing or is not the file stage '{name}' wrote"
        return None

    def begin(self, stage: str, cfg: dict, seed: int | None = None, reuse: bool = True) -> tuple[dict | None, dict[str, str]]:
        """Before a stage runs: (its recorded result if it is already complete with these settings and
        inputs, else None; the hashes of its inputs). Marks it running and everything downstream stale."""
        inputs = self.require(stage, cfg)
        if records.read(self.root) is None and stage != "ingest":
            return None, inputs
        name = f"train_seed{seed}" if stage == "train" else stage
        settings = self.stage_settings(stage, cfg, seed)
        with records.updating(self.root) as manifest:
            entry = manifest["stages"].get(name)
            reusable = reuse and stage not in ALWAYS_RUN and not os.environ.get("DVC_ROOT") and entry is not None
            if reusable and entry.get("inputs") == inputs and self._entry_problem(name, entry, settings) is None:
                return entry["result"], inputs
            manifest["stages"][name] = {**(entry or {"outputs": {}}), "status": "running"}
            for other, later in manifest["stages"].items():
                if other != name and _is_downstream(other, stage):
                    later["status"] = "stale"
        return None, inputs

    def open_staging(self, stage: str) -> Path:
        """A fresh ``.staging/<stage>/`` mirroring the folder (links to every file, work folders linked
        whole), so the stage reads its inputs there and every file it writes stays there until commit."""
        staged = self.staging_root / stage
        if staged.exists():
            self._finish_or_drop(staged)
        staged.mkdir(parents=True)
        _mirror(self.root, staged, top=True)
        return staged

    def drop_staging(self, stage: str) -> None:
        shutil.rmtree(self.staging_root / stage, ignore_errors=True)

    def commit(self, stage: str, cfg: dict, seed: int | None, inputs: dict, result: object) -> None:
        """Commit a stage's staged outputs (or, for train, record the seed's files written in place)."""
        name = f"train_seed{seed}" if stage == "train" else stage
        settings = self.stage_settings(stage, cfg, seed)
        entry = {"status": "complete", "config": settings, "config_hash": records.config_hash(settings),
                 "inputs": inputs, "result": json.loads(json.dumps(result, default=_plain))}
        if stage in IN_PLACE:
            written = self._in_place_outputs(stage, seed)
            files = [rel for path in written if path.exists() for rel in records.files_under(path, self.root)]
            entry["outputs"] = {str(rel): records.fingerprint(self.root / rel) for rel in files}
            if records.read(self.root) is not None:
                with records.updating(self.root) as manifest:
                    manifest["stages"][name] = entry
                    manifest.setdefault("config", {}).update({key: cfg.get(key) for key in STAGES[stage][0]})
            return
        staged = self.staging_root / stage
        files = [rel for rel in records.files_under(staged, staged) if not (staged / rel).is_symlink() and rel.name != COMMIT_RECORD]
        entry["outputs"] = {str(rel): records.fingerprint(staged / rel) for rel in files}
        record = staged / COMMIT_RECORD
        temp = record.with_name(record.name + ".tmp")
        sections = {key: cfg.get(key) for key in STAGES[stage][0]}
        data = records.data_fingerprint(cfg["data"].get("path")) if stage == "ingest" else None
        temp.write_text(json.dumps({"name": name, "entry": entry, "sections": sections, "data": data}))
        os.replace(temp, record)  # the commit point
        faults.reached(f"committing:{stage}")
        self._roll_forward(staged)

    def _in_place_outputs(self, stage: str, seed: int | None) -> list[Path]:
        """What a stage that writes in place (it resumes from its own files) leaves behind."""
        if stage == "train":
            return [self.checkpoints(seed), self.dynamics(seed), self.stage_metrics(f"train_seed{seed}")]
        members = sorted(self.checkpoints_root.glob("crossfit_*")) if self.checkpoints_root.is_dir() else []
        return [*members, self.crossfit_folds, self.stage_metrics("train_crossfit")]

    def _roll_forward(self, staged: Path) -> None:
        """Move a committed stage's files into place, list them in the manifest, drop the staging folder."""
        committed = json.loads((staged / COMMIT_RECORD).read_text())
        name, entry = committed["name"], committed["entry"]
        for rel in entry["outputs"]:
            source = staged / rel
            if source.exists() and not source.is_symlink():
                (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, self.root / rel)
        has_manifest = records.read(self.root) is not None
        if has_manifest or name == "ingest":
            with records.updating(self.root) as manifest:
                old = manifest["stages"].get(name, {}).get("outputs", {})
                for rel in set(old) - set(entry["outputs"]):  # outputs this run no longer writes
                    (self.root / rel).unlink(missing_ok=True)
                manifest["stages"][name] = entry
                manifest.setdefault("config", {}).update(committed["sections"])
                if committed["data"] is not None:
                    manifest["data"] = committed["data"]
        shutil.rmtree(staged, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.staging_root.rmdir()  # only when no other stage is staged


def _is_downstream(entry_name: str, stage: str) -> bool:
    """Whether manifest entry `entry_name` reads (directly or not) the outputs of `stage`."""
    name = "train" if entry_name.startswith("train_seed") else entry_name
    if name not in STAGES:
        return False
    needs = set(STAGES[name][1])
    return stage in needs or any(_is_downstream(n, stage) for n in needs)


def _mirror(source: Path, target: Path, top: bool = False) -> None:
    for path in source.iterdir():
        if top and path.name in PRIVATE or path.name.endswith(".tmp"):
            continue
        if path.is_dir() and not path.is_symlink() and not (top and path.name in WORK_DIRS):
            (target / path.name).mkdir()
            _mirror(path, target / path.name)
        else:
            (target / path.name).symlink_to(path.resolve())


def _plain(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def recorded_train(run_dir: str, cfg: dict, seed: int, fn: Callable[[], dict]) -> dict:
    """Run `fn` (training one seed in place, e.g. under DDP where every rank must train) and record it."""
    layout = RunLayout(run_dir)
    _, inputs = layout.begin("train", cfg, seed, reuse=False)
    result = fn()
    layout.commit("train", cfg, seed, inputs, result)
    return result


def managed(stage: str, fn: Callable) -> Callable:
    """Wrap a stage task ``fn(cfg, run_dir, ...)`` with the run directory's rules: refuse inputs the
    manifest does not vouch for, skip a stage already complete with these settings and inputs, stage and
    commit its outputs (train: record them). Other tasks are returned unchanged."""
    if stage not in STAGES:
        return fn

    @functools.wraps(fn)
    def run(cfg: dict, run_dir: str, *args, **kwargs):
        layout = RunLayout(run_dir)
        seed = None
        if stage == "train":
            seed = kwargs.get("seed", args[1] if len(args) > 1 else None)
            seed = int(cfg["train"]["seed"]) if seed is None else int(seed)
        done, inputs = layout.begin(stage, cfg, seed)
        if done is not None:
            return done
        if stage in IN_PLACE:
            result = fn(cfg, run_dir, *args, **kwargs)
        else:
            staged = layout.open_staging(stage)
            try:
                result = fn(cfg, str(staged), *args, **kwargs)
            except BaseException:
                layout.drop_staging(stage)
                raise
            faults.reached(f"staged:{stage}")
        layout.commit(stage, cfg, seed, inputs, result)
        return result

    return run
