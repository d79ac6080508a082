"""Build a model from its config and the data's input shape."""

from __future__ import annotations

import math

from torch import nn

from exemplar.errors import ExemplarError
from exemplar.models.config import IMAGE_MODELS, MODEL_NAMES, ModelConfig  # noqa: F401  (ModelConfig is re-exported)
from exemplar.models.cnn import SmallCNN
from exemplar.models.mlp import MLP
from exemplar.models.resnet import ResNet18

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
