"""Model settings (the ``model`` config group). Plain Python: importable without torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from exemplar.errors import ExemplarError
from exemplar.settings import require

MODEL_NAMES = ("auto", "cnn", "resnet18", "mlp")
IMAGE_MODELS = ("cnn", "resnet18")


@dataclass
class ModelConfig:
    """name: "auto" picks the CNN for images and the MLP for tables; "resnet18" is for images only."""

    name: str = "auto"
    cnn_widths: list[int] = field(default_factory=lambda: [32, 64])
    cnn_hidden: int = 128
    mlp_hidden: list[int] = field(default_factory=lambda: [256, 128])
    dropout: float = 0.1
    resnet_width: int = 64  # channels of the first ResNet-18 stage (later stages: 2x, 4x, 8x)

    def validate(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ExemplarError(f"model.name must be one of {MODEL_NAMES}, got '{self.name}'. Fix: e.g. model=cnn.")
        require(self.resnet_width <= 4096 and self.cnn_hidden <= 65536 and max(self.cnn_widths + self.mlp_hidden, default=1) <= 65536,
                "model widths (cnn_widths, cnn_hidden, mlp_hidden, resnet_width) must be at most 65536 (resnet_width 4096). Fix: use smaller widths.")
        if self.resnet_width < 1 or self.cnn_hidden < 1 or min(self.cnn_widths + self.mlp_hidden, default=1) < 1:
            raise ExemplarError("model widths (cnn_widths, cnn_hidden, mlp_hidden, resnet_width) must all be >= 1.")
        if not 0.0 <= self.dropout < 1.0:
            raise ExemplarError(f"model.dropout must lie in [0, 1), got {self.dropout}.")
