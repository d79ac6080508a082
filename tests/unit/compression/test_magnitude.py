from __future__ import annotations

import pytest
import torch

from exemplar.compression.magnitude import (
    achieved_sparsity,
    global_magnitude_masks,
    global_magnitude_prune,
    prunable_weights,
)
from exemplar.errors import ExemplarError
from tests.unit.compression.makers import tiny_cnn


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_achieved_global_sparsity_equals_the_request(sparsity):
    model = tiny_cnn()
    pruned, achieved = global_magnitude_prune(model, sparsity)
    weights = prunable_weights(pruned)
    total = sum(w.numel() for w in weights.values())
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    assert zeros == round(sparsity * total)
    assert achieved["global"] == pytest.approx(sparsity, abs=1.0 / total)
    assert achieved_sparsity(weights)["global"] == pytest.approx(achieved["global"])


def test_per_layer_sparsity_matches_the_zeros_of_each_layer():
    pruned, achieved = global_magnitude_prune(tiny_cnn(), 0.6)
    for name, weight in prunable_weights(pruned).items():
        assert achieved[name] == pytest.approx(float((weight == 0).float().mean()))


def test_pruning_is_global_and_removes_the_smallest_magnitudes():
    model = tiny_cnn()
    weights = prunable_weights(model)
    masks = global_magnitude_masks(weights, 0.5)
    kept = torch.cat([w.abs()[m].flatten() for w, m in zip(weights.values(), masks.values())])
    dropped = torch.cat([w.abs()[~m].flatten() for w, m in zip(weights.values(), masks.values())])
    assert dropped.max() <= kept.min()


def test_the_input_model_is_left_untouched_and_biases_stay_dense():
    model = tiny_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned, _ = global_magnitude_prune(model, 0.9)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(pruned.backbone.head.bias, model.backbone.head.bias)


def test_hand_made_two_layer_case():
    first, second = torch.tensor([[3.0, -1.0]]), torch.tensor([[0.5], [-4.0]])
    masks = global_magnitude_masks({"a": first, "b": second}, 0.5)
    assert masks["a"].tolist() == [[True, False]]
    assert masks["b"].tolist() == [[False], [True]]


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_invalid_sparsity_is_rejected(sparsity):
    with pytest.raises(ExemplarError, match="sparsity must be in"):
        global_magnitude_prune(tiny_cnn(), sparsity)
