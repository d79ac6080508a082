import numpy as np
import pytest

from exemplar.errors import ExemplarError
from exemplar.scoring.passes import fused_pass
from exemplar.scoring.vog import VogAccumulator, class_zscores, vog_from_maps, window_indices
from tests.unit.scoring.conftest import tiny_classifier, tiny_inputs


def loop_maps(model, x, targets) -> np.ndarray:
    """Reference: d logit_target / d input for one example at a time, channel-averaged."""
    rows = []
    for i in range(len(x)):
        xi = x[i : i + 1].clone().requires_grad_(True)
        model(xi)[0, targets[i]].backward()
        rows.append(xi.grad[0].mean(dim=0).flatten().numpy())
    return np.stack(rows)


def test_fused_pass_input_maps_equal_a_loop_and_ignore_batch_size(image_model, image_data):
    x, y = image_data
    expected = loop_maps(tiny_classifier("image"), x, y)
    for batch in (4, 64):
        out = fused_pass(image_model, x, y, batch)
        np.testing.assert_allclose(out.input_maps, expected, atol=1e-6)
        np.testing.assert_allclose(out.logits, image_model(x).detach().numpy(), atol=1e-5)


def test_table_maps_are_gradients_wrt_standardized_features():
    model = tiny_classifier("table")
    x, y = tiny_inputs("table", n=6)
    xi = x.clone().requires_grad_(True)
    model(xi).gather(1, y[:, None]).sum().backward()
    np.testing.assert_allclose(fused_pass(model, x, y).input_maps, (xi.grad * model.std).numpy(), atol=1e-6)


def test_vog_is_zero_for_identical_checkpoints(image_model, image_data):
    x, y = image_data
    accumulator = VogAccumulator()
    for _ in range(4):
        accumulator.add(fused_pass(image_model, x, y).input_maps)
    np.testing.assert_allclose(accumulator.raw_vog(), 0.0, atol=1e-7)


def test_streaming_vog_equals_the_reference_formula():
    maps = np.random.default_rng(0).normal(size=(5, 7, 16))
    accumulator = VogAccumulator()
    for t in range(5):
        accumulator.add(maps[t])
    np.testing.assert_allclose(accumulator.raw_vog(), vog_from_maps(maps), rtol=1e-10)
    by_hand = np.sqrt(((maps - maps.mean(axis=0)) ** 2).sum(axis=0) / 5).mean(axis=1)
    np.testing.assert_allclose(vog_from_maps(maps), by_hand, rtol=1e-12)


def test_class_zscores_have_mean_zero_and_std_one_per_class():
    rng = np.random.default_rng(1)
    values, classes = rng.gamma(2.0, size=60), rng.integers(0, 3, size=60)
    z = class_zscores(values, classes)
    for c in range(3):
        assert abs(z[classes == c].mean()) < 1e-12
        assert abs(z[classes == c].std() - 1.0) < 1e-12
    np.testing.assert_allclose(class_zscores(values, classes, absolute=True), np.abs(z))
    assert np.all(class_zscores(np.ones(4), np.array([0, 0, 1, 1])) == 0.0)


def test_windows_split_checkpoints_in_thirds():
    assert window_indices(15, "early") == list(range(0, 5))
    assert window_indices(15, "middle") == list(range(5, 10))
    assert window_indices(15, "late") == list(range(10, 15))
    assert window_indices(10, "all") == list(range(10))
    assert window_indices(4, "late") == [2, 3]  # never a single checkpoint
    assert window_indices(2, "early") == [0, 1]
    with pytest.raises(ExemplarError, match="vog_window"):
        window_indices(5, "first")


def test_vog_without_checkpoints_is_a_user_error():
    with pytest.raises(ExemplarError):
        VogAccumulator().raw_vog()
