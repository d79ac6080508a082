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


def test_dynamic_int8_on_a_one_column_table_keeps_its_first_layer_float_and_says_why():
    """torchao's int8 weight quantization raises on a Linear with one input feature (a one-column table)."""
    torch.manual_seed(0)
    model = Classifier(MLP(1, 2, (8,), 0.0), torch.zeros(1), torch.ones(1)).eval()
    quantized, report = quantize_dynamic_int8(model)
    assert report.quantized == ["backbone.head"] and "one input feature" in report.float_layers["backbone.body.0"]
    x = torch.randn(9, 1)
    assert_close_to_float(quantized, model, x)


def test_one_export_per_architecture_gives_the_same_quantized_models(trained):
    """Loading each model's weights into a copy of one exported graph (what the compress stage does for a
    population) gives exactly the model a separate export gives: same outputs, same int8 weights and scales."""
    from exemplar.compression.quantize import architecture_key, export_for_static_int8

    first, x = trained
    others = [tiny_cnn(seed).eval() for seed in (1, 2)]
    for model in others:  # trained and untrained weights, other input statistics too
        model.load_state_dict({k: v + 0.01 * torch.randn_like(v) for k, v in model.state_dict().items()})
    exported = export_for_static_int8(first, x[:32])
    for model, rows in zip([first, *others], (slice(0, 32), slice(32, 64), slice(64, 80))):
        assert architecture_key(model) == architecture_key(first)
        alone, alone_report = quantize_static_int8(model, x[rows])
        shared, shared_report = quantize_static_int8(model, x[rows], exported)
        with torch.no_grad():
            assert torch.equal(alone(x), shared(x))
        assert alone_report == shared_report
        alone_state, shared_state = alone.state_dict(), shared.state_dict()
        assert alone_state.keys() == shared_state.keys()
        assert all(torch.equal(alone_state[k], shared_state[k]) for k in alone_state)
    assert architecture_key(Classifier(MLP(6, 3, (8,), 0.0), torch.zeros(6), torch.ones(6))) != architecture_key(first)
