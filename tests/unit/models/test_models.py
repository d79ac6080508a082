"""Architectures: shapes, the (embed, head) split scoring relies on, rebuilding from a checkpoint,
and every conf/model option building and taking one training step."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from exemplar.errors import ExemplarError
from exemplar.models.classifier import input_statistics
from exemplar.models.factory import ModelConfig, build_classifier, classifier_from_checkpoint, model_meta, resolve_model_name
from exemplar.models.resnet import ResNet18
from exemplar.training.config import TrainConfig
from exemplar.training.loop import fit
from flows.config import CONF_DIR, compose

MODEL_OPTIONS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
INPUTS = {"image": (3, 16, 16), "table": (6,)}


def _data(modality: str, rows: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(rows, *INPUTS[modality], generator=generator), torch.arange(rows) % 3


@pytest.mark.parametrize(("name", "modality"), [("cnn", "image"), ("resnet18", "image"), ("mlp", "table"), ("mlp", "image")])
def test_forward_is_the_head_of_the_embedding(name, modality):
    x, _ = _data(modality)
    torch.manual_seed(0)
    model = build_classifier(ModelConfig(name=name, resnet_width=8), modality, INPUTS[modality], 3, *input_statistics(x)).eval()
    embedding = model.embed(x)
    assert embedding.shape == (8, model.head.in_features)
    assert isinstance(model.head, torch.nn.Linear) and model.head.out_features == 3
    assert torch.allclose(model(x), model.head(embedding))


def test_resnet18_is_the_cifar_variant_with_512_features():
    model = ResNet18(in_channels=3, num_classes=10)
    stem = model.stem[0]
    assert (stem.kernel_size, stem.stride) == ((3, 3), (1, 1))
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    assert model.head.in_features == 512
    assert len(model.stages) == 8  # 4 stages x 2 basic blocks
    assert 11.1e6 < sum(p.numel() for p in model.parameters()) < 11.2e6  # ResNet-18 (CIFAR): 11.17M


def test_resnet18_keeps_32x32_resolution_until_the_second_stage():
    model = ResNet18(in_channels=3, num_classes=10, width=4).eval()
    x = torch.rand(2, 3, 32, 32)
    assert model.stages[:2](model.stem(x)).shape == (2, 4, 32, 32)
    assert model.stages(model.stem(x)).shape == (2, 32, 4, 4)


@pytest.mark.parametrize(("name", "modality"), [("cnn", "image"), ("resnet18", "image"), ("mlp", "table")])
def test_a_checkpoint_alone_rebuilds_the_same_classifier(name, modality):
    x, _ = _data(modality)
    config = ModelConfig(name=name, resnet_width=4)
    torch.manual_seed(0)
    model = build_classifier(config, modality, INPUTS[modality], 3, *input_statistics(x)).eval()
    checkpoint = {"model": model.state_dict(), "meta": model_meta(config, modality, INPUTS[modality], 3)}
    rebuilt = classifier_from_checkpoint(checkpoint)
    assert torch.equal(rebuilt(x), model(x))


def test_image_only_models_reject_tables_and_auto_picks_by_modality():
    assert resolve_model_name("auto", "image") == "cnn" and resolve_model_name("auto", "table") == "mlp"
    for name in ("cnn", "resnet18"):
        with pytest.raises(ExemplarError, match=f"model={name} needs image data"):
            resolve_model_name(name, "table")
    with pytest.raises(ExemplarError, match="model.name"):
        resolve_model_name("vgg", "image")


def test_input_statistics_are_per_channel_and_never_zero():
    x = torch.zeros(4, 2, 3, 3)
    x[:, 0] = torch.arange(4.0)[:, None, None]
    mean, std = input_statistics(x)
    assert mean.shape == (2, 1, 1) and mean[0].item() == 1.5 and mean[1].item() == 0.0
    assert std[1].item() == 1.0  # constant channel: std replaced by 1


@pytest.mark.parametrize("option", MODEL_OPTIONS)
def test_every_model_option_builds_and_takes_one_training_step(option):
    section = OmegaConf.to_container(compose([f"model={option}"]))["model"]
    config = ModelConfig(**section)
    config.validate()
    modality = "table" if option == "mlp" else "image"
    x, y = _data(modality)
    torch.manual_seed(0)
    model = build_classifier(config, modality, INPUTS[modality], 3, *input_statistics(x))
    before = [p.detach().clone() for p in model.parameters()]
    (result,) = fit(model, x, y, TrainConfig(epochs=1, batch_size=8, device="cpu"))
    assert result.correct.shape == (8,)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
