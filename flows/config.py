"""Loading the configuration: Hydra composition of ``conf/`` (the source of truth), or a
``params.yaml`` already composed by DVC, plus command-line overrides in Hydra's grammar."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from exemplar.compression.config import CompressConfig
from exemplar.data.decisions import read_decisions
from exemplar.data.loaders import DataConfig
from exemplar.errors import ExemplarError
from exemplar.models.factory import ModelConfig
from exemplar.pruning.config import PruneConfig
from exemplar.report.config import ReportConfig
from exemplar.scoring.config import ScoreConfig
from exemplar.scoring.registry import SCORERS
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
        raise ExemplarError(f"incomplete configuration: {error}. Fix: set the missing value on the command line.") from error


def validate(cfg: dict) -> None:
    """Build every component's config dataclass and validate it, before any work starts."""
    sections = {
        "data": DataConfig, "model": ModelConfig, "train": TrainConfig, "score": ScoreConfig,
        "prune": PruneConfig, "compress": CompressConfig, "report": ReportConfig, "runner": RunnerConfig,
    }
    built = {}
    for name, cls in sections.items():
        try:
            built[name] = cls(**cfg[name])
        except TypeError as error:
            raise ExemplarError(f"config section '{name}' does not match {cls.__name__}: {error}.") from error
    _require_existing_data_path(cfg["data"])
    if cfg.get("decisions"):  # the file's form now; its ids and class names when ingest reads the data
        read_decisions(cfg["decisions"])
    for component in built.values():
        if hasattr(component, "validate"):
            component.validate()
    unknown = sorted(set(built["score"].signals) - set(SCORERS))
    if unknown:
        raise ExemplarError(f"score.signals has unknown name(s) {unknown}; available: {sorted(SCORERS)}.")


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
