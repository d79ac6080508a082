"""Loading the configuration: Hydra composition of ``conf/`` (the source of truth), or a
``params.yaml`` already composed by DVC, plus command-line overrides in Hydra's grammar."""

from __future__ import annotations

import typing
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from exemplar.compression.config import CompressConfig
from exemplar.data.config import DataConfig
from exemplar.errors import ExemplarError
from exemplar.models.config import ModelConfig
from exemplar.pruning.config import PruneConfig
from exemplar.report.config import ReportConfig
from exemplar.scoring.config import DEFAULT_SIGNALS, ScoreConfig
from exemplar.settings import check_section, check_value, require, unknown_key_message
from exemplar.training.config import TrainConfig
from flows._env import PROJECT_ROOT
from flows.runners import RunnerConfig

CONF_DIR = PROJECT_ROOT / "conf"


def compose(overrides: list[str]) -> DictConfig:
    """Compose ``conf/config.yaml`` with Hydra overrides such as ``train.epochs=5`` or ``data=parquet``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def load_params(path: Path, overrides: list[str]) -> DictConfig:
    """Load a composed ``params.yaml`` (as DVC writes it) and apply ``key=value`` overrides."""
    if not Path(path).exists():
        raise ExemplarError(f"params file '{path}' does not exist. Fix: run `make params` (or `dvc exp run`) to generate it.")
    config = OmegaConf.load(path)
    OmegaConf.set_struct(config, True)
    bad = [o for o in overrides if "=" not in o or o.startswith(("+", "~"))]
    if bad:
        raise ExemplarError(f"with --params only plain key=value overrides are accepted, got {bad}.")
    return OmegaConf.merge(config, OmegaConf.from_dotlist(overrides))


def to_plain(config: DictConfig) -> dict:
    """Resolve interpolations and return plain Python containers (safe to pass to Prefect tasks)."""
    try:
        return OmegaConf.to_container(config, resolve=True, throw_on_missing=True)
    except Exception as error:  # omegaconf raises MissingMandatoryValue and friends
        key = getattr(error, "full_key", None) or str(error).splitlines()[0]
        raise ExemplarError(
            f"the setting '{key}' has no value and this configuration needs one. Fix: set it on the command "
            f"line, e.g. {key}=/path/to/your/data for data.path."
        ) from error


SECTIONS = {
    "data": DataConfig, "model": ModelConfig, "train": TrainConfig, "score": ScoreConfig,
    "prune": PruneConfig, "compress": CompressConfig, "report": ReportConfig, "runner": RunnerConfig,
}


@dataclass
class TrackingConfig:
    """Where MLflow records the run (the ``tracking`` section of conf/config.yaml)."""

    uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db
    experiment: str = "exemplar"
    required: bool = True  # an unreachable server stops the run; false: track locally in out_dir instead
    timeout_seconds: float = 5.0  # the up-front reachability check waits this long

    def validate(self) -> None:
        require(bool(self.experiment.strip()), "tracking.experiment must be a non-empty name. Fix: e.g. tracking.experiment=exemplar.")
        require(0 < self.timeout_seconds <= 600, f"tracking.timeout_seconds must be in (0, 600], got {self.timeout_seconds}. Fix: e.g. tracking.timeout_seconds=5.")


@dataclass
class RunSettings:
    """Top-level settings of a run (conf/config.yaml outside the groups)."""

    out_dir: str | None = None
    overwrite: bool = False
    lock_wait_seconds: float = 0.0
    decisions: str | None = None  # a reviewer's decisions.csv / Label Studio export (docs/report.md)

    def validate(self) -> None:
        require(0 <= self.lock_wait_seconds <= 7 * 24 * 3600, f"lock_wait_seconds must be in 0..604800, got {self.lock_wait_seconds}. Fix: e.g. lock_wait_seconds=600.")
        require(self.out_dir is None or bool(self.out_dir.strip()), "out_dir must be a folder name or null. Fix: e.g. out_dir=runs/demo.")


def top_level_keys() -> set[str]:
    """Top-level keys conf/ declares (its groups and plain keys), read without composing."""
    import yaml

    declared = yaml.safe_load((CONF_DIR / "config.yaml").read_text()) or {}
    groups = {next(iter(entry)) for entry in declared.get("defaults", []) if isinstance(entry, dict)}
    return (set(declared) - {"defaults"}) | groups


def validate(cfg: dict) -> None:
    """Check every key's type and range, once, before any stage (and before Prefect or torch load):
    unknown keys (including ``+new`` ones) are errors naming the closest valid keys."""
    known = top_level_keys() | set(SECTIONS) | {"tracking"} | {f.name for f in fields(RunSettings)}
    for key in cfg:
        if key not in known:
            raise ExemplarError(unknown_key_message(str(key), "", known))
    for name, cls in {**SECTIONS, "tracking": TrackingConfig}.items():
        check_section(name, cls, cfg.get(name) or {})
        cls(**(cfg.get(name) or {})).validate()
    run = {f.name: cfg.get(f.name, f.default) for f in fields(RunSettings)}
    hints = typing.get_type_hints(RunSettings)
    for key, value in run.items():
        check_value(key, value, hints[key])
    RunSettings(**run).validate()
    _require_existing_data_path(cfg["data"])
    _require_known_signals(cfg["score"]["signals"])
    if cfg.get("decisions"):  # the file's form now; its ids and class names when ingest reads the data
        from exemplar.data.decisions import read_decisions

        read_decisions(cfg["decisions"])


def _require_known_signals(signals: list[str]) -> None:
    if set(signals) <= set(DEFAULT_SIGNALS):
        return  # the common case answers without importing the scorers (pandas)
    from exemplar.scoring.registry import SCORERS

    unknown = sorted(set(signals) - set(SCORERS))
    if unknown:
        raise ExemplarError(f"score.signals has unknown name(s) {unknown}; available: {sorted(SCORERS)}. Fix: remove or correct them.")


def _require_existing_data_path(data: dict) -> None:
    """Fail fast, before any stage starts, when the configured input does not exist."""
    path = data.get("path")
    if path and not Path(path).expanduser().exists():
        raise ExemplarError(
            f"data.path '{path}' does not exist (resolved against {Path.cwd()}). "
            "Fix: pass the path of an existing file or folder, e.g. data.path=/abs/path/data.parquet."
        )


def resolve_out_dir(cfg: dict, base: Path | None = None) -> Path:
    """``out_dir`` as an absolute path; ``runs/<YYYYmmdd-HHMMSS>`` under the working directory when unset."""
    base = base or Path.cwd()
    if cfg.get("out_dir"):
        path = Path(cfg["out_dir"])
        return path if path.is_absolute() else base / path
    return base / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")
