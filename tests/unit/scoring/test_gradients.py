import numpy as np
import pytest
import torch
import torch.nn.functional as F

from exemplar.errors import ExemplarError
from exemplar.scoring.gradients import (
    GaussianProjector, example_gradient_norms, iter_example_gradients, projected_gradients, select_parameters,
)
from tests.unit.scoring.conftest import SharedLayer, tiny_classifier, tiny_inputs


def loop_gradients(model, x, y, prefixes=None) -> np.ndarray:
    """Reference: one backward pass per example."""
    params = select_parameters(model, prefixes)
    named = dict(model.named_parameters())
    rows = []
    for i in range(len(x)):
        model.zero_grad()
        for p in model.parameters():
            p.requires_grad_(True)
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        rows.append(torch.cat([named[name].grad.flatten() for name in params]).numpy().copy())
    return np.stack(rows)


@pytest.mark.parametrize("method", ["vmap", "hooks"])
@pytest.mark.parametrize("modality", ["image", "table"])
def test_vectorised_gradients_equal_a_loop(modality, method):
    model = tiny_classifier(modality)
    x, y = tiny_inputs(modality, n=7)
    vectorised = torch.cat(list(iter_example_gradients(model, x, y, chunk_size=3, method=method))).numpy()
    np.testing.assert_allclose(vectorised, loop_gradients(model, x, y), atol=1e-5, rtol=1e-5)


def test_layers_without_hook_support_fall_back_to_vmap():
    model = SharedLayer().eval()
    x, y = torch.rand(5, 4), torch.tensor([0, 1, 2, 3, 0])
    auto = torch.cat(list(iter_example_gradients(model, x, y, chunk_size=2))).numpy()
    np.testing.assert_allclose(auto, loop_gradients(model, x, y), atol=1e-5)
    with pytest.raises(ExemplarError, match="hooks"):
        list(iter_example_gradients(model, x, y, method="hooks"))


def test_selected_layers_and_chunking_do_not_change_gradients(image_model, image_data):
    x, y = image_data
    whole = torch.cat(list(iter_example_gradients(image_model, x, y, ["backbone.head"], chunk_size=100))).numpy()
    chunked = torch.cat(list(iter_example_gradients(image_model, x, y, ["backbone.head"], chunk_size=5))).numpy()
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    np.testing.assert_allclose(whole, loop_gradients(image_model, x, y, ["backbone.head"]), atol=1e-5)
    assert whole.shape == (len(x), 16 * 3 + 3)


def test_grand_is_the_norm_of_the_loop_gradient(image_model, image_data):
    x, y = image_data
    expected = np.linalg.norm(loop_gradients(image_model, x, y), axis=1)
    np.testing.assert_allclose(example_gradient_norms(image_model, x, y, chunk_size=4), expected, rtol=1e-5)


def test_unknown_layer_prefix_is_a_user_error(image_model):
    with pytest.raises(ExemplarError, match="tracin_layers"):
        select_parameters(image_model, ["no.such.layer"])


def test_projection_is_seeded_and_preserves_dot_products():
    grads = torch.randn(6, 3000, generator=torch.Generator().manual_seed(1))
    first, again = GaussianProjector(2048, seed=3)(grads), GaussianProjector(2048, seed=3)(grads)
    assert torch.equal(first, again)
    assert not torch.equal(first, GaussianProjector(2048, seed=4)(grads))
    exact, projected = grads @ grads.T, first @ first.T
    relative = (projected - exact).abs().max() / exact.diagonal().min()
    assert relative < 0.15  # JL: error ~ sqrt(1/d) relative to the norms


def test_projected_gradients_without_projector_are_exact(image_model, image_data):
    x, y = image_data
    exact = projected_gradients(image_model, x, y, None, ["backbone.head"], chunk_size=5)
    np.testing.assert_allclose(exact, loop_gradients(image_model, x, y, ["backbone.head"]), atol=1e-5)
