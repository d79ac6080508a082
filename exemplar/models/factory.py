"""Build a model from its config and the data's input shape."""

from __future__ import annotations

import math

from dataclasses import dataclass, field

from torch import nn

from exemplar.errors import ExemplarError
from exemplar.models.cnn import SmallCNN
from exemplar.models.mlp import MLP
from exemplar.models.resnet import ResNet18

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
        if self.resnet_width < 1 or self.cnn_hidden < 1 or min(self.cnn_widths + self.mlp_hidden, default=1) < 1:
            raise ExemplarError("model widths (cnn_widths, cnn_hidden, mlp_hidden, resnet_width) must all be >= 1.")
        if not 0.0 <= self.dropout < 1.0:
            raise ExemplarError(f"model.dropout must lie in [0, 1), got {self.dropout}.")


def resolve_model_name(name: str, modality: str) -> str:
    """The concrete architecture for a config name and a data modality."""
    if name not in MODEL_NAMES:
        raise ExemplarError(f"model.name must be one of {MODEL_NAMES}, got '{name}'. Fix: e.g. model=cnn.")
    if name == "auto":
        return "cnn" if modality == "image" else "mlp"
    if name in IMAGE_MODELS and modality != "image":
        raise ExemplarError(f"model={name} needs image data but this dataset is tabular. Fix: use model=mlp or model=auto.")
    return name


def build_model(config: ModelConfig, modality: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Instantiate the network for inputs of `input_shape` ((C, H, W) or (F,)) and `num_classes`."""
    name = resolve_model_name(config.name, modality)
    if name == "cnn":
        return SmallCNN(input_shape[0], num_classes, tuple(config.cnn_widths), config.cnn_hidden, config.dropout)
    if name == "resnet18":
        return ResNet18(input_shape[0], num_classes, config.resnet_width)
    return MLP(math.prod(input_shape), num_classes, tuple(config.mlp_hidden), config.dropout)


def build_classifier(config: ModelConfig, modality: str, input_shape: tuple[int, ...], num_classes: int, mean, std) -> nn.Module:
    """The backbone for the data wrapped with input normalisation (see :class:`Classifier`)."""
    from exemplar.models.classifier import Classifier

    return Classifier(build_model(config, modality, input_shape, num_classes), mean, std)


def model_meta(config: ModelConfig, modality: str, input_shape: tuple[int, ...], num_classes: int) -> dict:
    """Plain-typed description stored in every checkpoint so the model can be rebuilt from it alone."""
    from dataclasses import asdict

    return {"model": asdict(config), "modality": modality, "input_shape": list(input_shape), "num_classes": num_classes}


def classifier_from_checkpoint(checkpoint: dict) -> nn.Module:
    """Rebuild the classifier described by ``checkpoint['meta']`` and load its weights (eval mode)."""
    import torch

    meta = checkpoint["meta"]
    state = checkpoint["model"]
    model = build_classifier(
        ModelConfig(**meta["model"]), meta["modality"], tuple(meta["input_shape"]), meta["num_classes"],
        torch.zeros_like(state["mean"]), torch.ones_like(state["std"]),
    )
    model.load_state_dict(state)
    return model.eval()
