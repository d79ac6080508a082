"""Scoring settings (field names equal the keys of ``conf/score/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exemplar.errors import ExemplarError
from exemplar.scoring.crossfit import CrossfitConfig

TRACIN_SCOPES = ("last_layer", "layers", "all")
GRADIENT_METHODS = ("kronecker", "vmap", "hooks")
VOG_WINDOWS = ("early", "middle", "late", "all")
VOG_LABELS = ("given", "predicted")
DEFAULT_SIGNALS = [
    "loss", "margin", "el2n", "grand", "confidently_wrong", "self_influence", "vog",
    "forgetting", "low_confidence", "variability", "outlier", "input_outlier",
    "oos_confidence", "oos_margin", "label_issue",
]


@dataclass
class ScoreConfig:
    signals: list[str] = field(default_factory=lambda: list(DEFAULT_SIGNALS))
    batch_size: int = 1024  # rows per fused pass (measured: benchmarks/results/scoring.json)
    el2n_epoch: int = 2  # EL2N and GraNd use the first checkpoint at or after this epoch ("early in training")
    gradient_chunk: int = 128  # rows per call for per-example parameter gradients (GraNd, TracIn beyond the last layer)
    gradient_method: str = "kronecker"  # kronecker (factored projection, Linear/Conv2d; else vmap) | vmap (torch.func, any model) | hooks (Linear/Conv2d outer products)
    tracin_scope: str = "last_layer"  # last_layer (exact, cheap) | layers | all
    tracin_layers: list[str] = field(default_factory=list)  # parameter-name prefixes for scope=layers
    projection_dim: int = 512  # JL projection for scope=layers/all (kronecker: about this many, k x k per layer); 0 keeps exact gradients
    projection_seed: int = 0
    tracin_exact_norms: bool = True  # layers/all: self-influence from exact ||g||^2 (true) or the projected ||Pg||^2 (false: no per-example gradient of parameter size, faster, an estimate)
    influence_top_k: int = 5  # proponents and opponents per test example; 0 skips influence_topk.parquet
    influence_ids: list[str] = field(default_factory=list)  # extra (e.g. training) ids to explain
    vog_window: str = "all"  # early | middle | late | all (thirds of the checkpoints)
    vog_label: str = "given"  # given | predicted (the final model's prediction, for unlabelled data)
    vog_absolute: bool = False  # |z| instead of z
    outlier_k: int = 10  # neighbours for outlier_score and input_outlier_score
    oos: CrossfitConfig = field(default_factory=CrossfitConfig)  # cross-fitted out-of-sample predictions

    def __post_init__(self) -> None:
        if isinstance(self.oos, dict) or hasattr(self.oos, "keys"):
            self.oos = CrossfitConfig(**dict(self.oos))

    def validate(self) -> None:
        """Raise ExemplarError naming the first bad setting and its fix."""
        choices = {"tracin_scope": TRACIN_SCOPES, "vog_window": VOG_WINDOWS, "vog_label": VOG_LABELS, "gradient_method": GRADIENT_METHODS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ExemplarError(f"score.{name} must be one of {allowed}, got '{getattr(self, name)}'.")
        for name in ("batch_size", "gradient_chunk", "outlier_k", "el2n_epoch"):
            if getattr(self, name) < 1:
                raise ExemplarError(f"score.{name} must be >= 1, got {getattr(self, name)}.")
        if self.projection_seed < 0:
            raise ExemplarError(f"score.projection_seed must be >= 0, got {self.projection_seed}. Fix: e.g. score.projection_seed=0.")
        if self.projection_dim < 0 or self.influence_top_k < 0:
            raise ExemplarError("score.projection_dim and score.influence_top_k must be >= 0.")
        if self.tracin_scope == "layers" and not self.tracin_layers:
            raise ExemplarError("score.tracin_scope=layers needs score.tracin_layers, e.g. ['backbone.head', 'backbone.neck'].")
        self.oos.validate()
        if self.tracin_scope == "all" and self.projection_dim == 0:
            raise ExemplarError("score.tracin_scope=all needs a projection (score.projection_dim > 0, e.g. 512).")


def early_checkpoint_index(epochs: list[int], target: int) -> int:
    """Index of the first checkpoint epoch >= `target` (the last one if none is)."""
    for index, epoch in enumerate(epochs):
        if epoch >= target:
            return index
    return len(epochs) - 1
