import numpy as np
import pytest
import torch

from exemplar.scoring.gradients import (
    GaussianProjector, _hookable_layers, example_gradient_norms, gradient_sketch, iter_example_gradients, select_parameters,
)
from exemplar.scoring.projection import ModuleRecorder, build_projections, factored_sketch, side_dim
from tests.unit.scoring.conftest import SharedLayer, tiny_classifier, tiny_inputs
from tests.unit.scoring.test_gradients import loop_gradients


def projections(model, dim: int, seed: int = 0, prefixes=None):
    params = select_parameters(model, prefixes)
    return build_projections(_hookable_layers(model, params), list(params), dim, seed)


def explicit_matrix(layers) -> torch.Tensor:
    """The full (d, P) matrix: block-diagonal kron(P_out, P_in) for each weight, P_out for each bias."""
    blocks = []
    for layer in layers:
        module = layer.module
        out_features, fan_in = module.weight.shape[0], module.weight[0].numel()
        p_out = layer.p_out if layer.p_out is not None else torch.eye(out_features)
        p_in = layer.p_in if layer.p_in is not None else torch.eye(fan_in)
        if layer.weight:
            blocks.append(torch.kron(p_out, p_in))
        if layer.bias:
            blocks.append(p_out)
    return torch.block_diag(*blocks)


@pytest.mark.parametrize("exact_norms", [True, False])  # conv layers: projected from G_i / per position
@pytest.mark.parametrize("modality, prefixes", [
    ("image", None), ("table", None), ("image", ["backbone.features.2", "backbone.neck", "backbone.head.weight"]),
    ("table", ["backbone.body.3", "backbone.head.weight"]),
])
def test_factored_projection_equals_projecting_materialised_gradients(modality, prefixes, exact_norms):
    model = tiny_classifier(modality)
    x, y = tiny_inputs(modality, n=7)
    layers = projections(model, dim=40, seed=1, prefixes=prefixes)
    assert any(layer.p_in is not None for layer in layers) and any(layer.p_out is not None for layer in layers)
    squared, sketch = factored_sketch(model, layers, x, y, chunk_size=3, keep=True, exact_norms=exact_norms)
    exact = loop_gradients(model, x, y, prefixes)
    expected = torch.from_numpy(exact) @ explicit_matrix(layers).T
    assert sketch.shape == expected.shape == (7, sum(layer.dim for layer in layers))
    np.testing.assert_allclose(sketch, expected.numpy(), atol=1e-5, rtol=1e-5)
    norms = exact.astype(np.float64) if exact_norms else sketch.astype(np.float64)
    np.testing.assert_allclose(squared, (norms**2).sum(axis=1), rtol=1e-5)


def test_norms_without_the_projection_are_exact(image_model, image_data):
    x, y = image_data
    squared, sketch = factored_sketch(image_model, projections(image_model, dim=40), x, y, chunk_size=5, keep=False)
    assert sketch is None
    np.testing.assert_allclose(squared, (loop_gradients(image_model, x, y).astype(np.float64) ** 2).sum(axis=1), rtol=1e-5)


def test_projection_is_seeded_and_sized_from_the_total_dimension(image_model):
    first, again, other = projections(image_model, 200, 3), projections(image_model, 200, 3), projections(image_model, 200, 4)
    assert all(torch.equal(a.p_in, b.p_in) for a, b in zip(first, again) if a.p_in is not None)
    assert not all(torch.equal(a.p_in, b.p_in) for a, b in zip(first, other) if a.p_in is not None)
    side = side_dim(200, len(first))
    assert side == 6  # 5 layers: floor(sqrt(200 / 5))
    for layer in first:  # each side is k x (its size), or exact when the size is <= k
        assert layer.p_out is None or layer.p_out.shape[0] == side
        assert layer.p_in is None or layer.p_in.shape[0] == side


def test_projected_inner_products_track_exact_tracin_inner_products():
    model = tiny_classifier("image", seed=2)
    x, y = tiny_inputs("image", n=24, seed=2)
    exact = loop_gradients(model, x, y).astype(np.float64)
    _, sketch = factored_sketch(model, projections(model, dim=300, seed=0), x, y, chunk_size=8, keep=True)
    off = ~np.eye(len(x), dtype=bool)
    projected = sketch.astype(np.float64) @ sketch.T.astype(np.float64)
    assert np.corrcoef((exact @ exact.T)[off], projected[off])[0, 1] >= 0.9


@pytest.mark.parametrize("modality", ["image", "table"])
def test_chunk_size_does_not_change_the_sketch(modality):
    model = tiny_classifier(modality)
    x, y = tiny_inputs(modality, n=11)
    layers = projections(model, dim=64)
    whole = factored_sketch(model, layers, x, y, chunk_size=11, keep=True)
    for chunk in (1, 4):
        squared, sketch = factored_sketch(model, layers, x, y, chunk_size=chunk, keep=True)
        np.testing.assert_allclose(sketch, whole[1], atol=1e-6)
        np.testing.assert_allclose(squared, whole[0], rtol=1e-6)
        per_position = factored_sketch(model, layers, x, y, chunk_size=chunk, keep=True, exact_norms=False)[1]
        np.testing.assert_allclose(per_position, whole[1], atol=1e-5)


def test_gradient_sketch_dispatches_to_the_factored_projection(image_model, image_data):
    x, y = image_data
    squared, sketch = gradient_sketch(image_model, x, y, GaussianProjector(100, seed=5), None, 4, True, "kronecker")
    expected = factored_sketch(image_model, projections(image_model, 100, 5), x, y, 4, True)
    np.testing.assert_allclose(sketch, expected[1], atol=1e-6)
    exact = np.concatenate([g.numpy() for g in iter_example_gradients(image_model, x, y, method="vmap")]).astype(np.float64)
    np.testing.assert_allclose(squared, (exact**2).sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(example_gradient_norms(image_model, x, y, method="kronecker"), np.sqrt((exact**2).sum(axis=1)), rtol=1e-5)


def test_layers_without_factored_support_fall_back_to_the_dense_projection():
    model = SharedLayer().eval()
    x, y = torch.rand(5, 4), torch.tensor([0, 1, 2, 3, 0])
    squared, sketch = gradient_sketch(model, x, y, GaussianProjector(16, seed=0), None, 2, True, "kronecker")
    exact = loop_gradients(model, x, y)
    np.testing.assert_allclose(sketch, exact @ GaussianProjector(16, seed=0).matrix(exact.shape[1]).numpy(), atol=1e-5)
    np.testing.assert_allclose(squared, (exact.astype(np.float64) ** 2).sum(axis=1), rtol=1e-5)


@pytest.mark.parametrize("modality", ["image", "table"])
def test_recorder_keeps_the_heads_input_and_output_of_every_chunk(modality):
    model = tiny_classifier(modality)
    x, y = tiny_inputs(modality, n=11)
    recorder = ModuleRecorder(model.head)
    plain = factored_sketch(model, projections(model, dim=40), x, y, chunk_size=4, keep=True)
    recorded = factored_sketch(model, projections(model, dim=40), x, y, chunk_size=4, keep=True, recorder=recorder)
    embeddings, logits = recorder.joined(len(x))
    with torch.no_grad():
        np.testing.assert_allclose(embeddings, model.embed(x).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(logits, model(x).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(plain[1], recorded[1])  # recording changes nothing else
    assert recorder.joined(len(x) + 1) is None  # rows missing: the caller must run its own pass


def test_recorder_is_incomplete_when_its_module_runs_twice():
    recorder = ModuleRecorder(torch.nn.Identity())
    recorder.add([(torch.zeros(2, 3), torch.zeros(2, 3))] * 2)
    assert not recorder.complete and recorder.joined(2) is None
