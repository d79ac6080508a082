"""int8 models stay close to float. Tolerance: every logit within 3% of the float logits' range
(max - min over the batch) and top-1 agreement of at least 95% on the batch."""

from __future__ import annotations

import pytest
import torch

from exemplar.compression.finetune import prune_finetune
from exemplar.compression.measure import serialized_bytes
from exemplar.compression.quantize import quantize_dynamic_int8, quantize_static_int8
from exemplar.compression.schedule import PruneSchedule
from exemplar.models.classifier import Classifier
from exemplar.models.mlp import MLP
from exemplar.training.config import TrainConfig
from tests.unit.compression.makers import blob_data, tiny_cnn

RELATIVE_TOLERANCE = 0.03
MIN_AGREEMENT = 0.95


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    x, y = blob_data(128)
    config = TrainConfig(epochs=4, batch_size=16, lr=0.01, schedule="constant")
    return prune_finetune(tiny_cnn(), x, y, PruneSchedule(final=0.0), config).model, x


def assert_close_to_float(quantized, model, x):
    with torch.no_grad():
        reference, output = model(x), quantized(x)
    spread = float(reference.max() - reference.min())
    assert float((output - reference).abs().max()) <= RELATIVE_TOLERANCE * spread
    assert float((output.argmax(1) == reference.argmax(1)).float().mean()) >= MIN_AGREEMENT


def test_dynamic_int8_is_close_and_names_the_float_convolutions(trained):
    model, x = trained
    quantized, report = quantize_dynamic_int8(model)
    assert_close_to_float(quantized, model, x)
    assert report.quantized == ["backbone.neck.0", "backbone.head"]
    assert set(report.float_layers) == {"backbone.features.0", "backbone.features.2", "backbone.features.5"}
    assert all("nn.Linear only" in reason for reason in report.float_layers.values())


def test_static_int8_quantizes_every_layer_and_runs_any_batch_size(trained):
    model, x = trained
    quantized, report = quantize_static_int8(model, x[:32])
    assert_close_to_float(quantized, model, x)
    assert len(report.quantized) == 5 and report.float_layers == {}
    assert quantized(x[:1]).shape == (1, 4) and quantized(x[:7]).shape == (7, 4)
    assert serialized_bytes(quantized)[0] < serialized_bytes(model)[0]  # int8 weights (tiny model: scales dominate)


def test_static_int8_on_a_table_model_with_one_calibration_row():
    torch.manual_seed(0)
    model = Classifier(MLP(6, 3, (8,), 0.0), torch.zeros(6), torch.ones(6)).eval()
    quantized, report = quantize_static_int8(model, torch.rand(1, 6))
    assert report.quantized == ["backbone.body.0", "backbone.head"]
    assert quantized(torch.rand(5, 6)).shape == (5, 3)
