import numpy as np
import pytest
import torch

from exemplar.scoring.gradients import projected_gradients
from exemplar.scoring.passes import fused_pass
from exemplar.scoring.tracin import (
    DenseFeatures, LastLayerFeatures, influence_matrix, self_influence, top_influences, topk_table,
)
from tests.unit.scoring.conftest import tiny_classifier, tiny_inputs


def last_layer_features(model, x, y) -> LastLayerFeatures:
    out = fused_pass(model, x, None)
    return LastLayerFeatures.from_outputs(out.logits, out.embeddings, y.numpy())


def test_one_dimensional_linear_model_matches_the_hand_formula():
    # Model: logits = W x + b with W, b = 0 at both checkpoints, K = 2 -> p = (1/2, 1/2) everywhere,
    # so dy = +-(1/2, -1/2), dy.dy' = +1/2 (same label) or -1/2, and
    # TracInCP(z, z') = (eta_1 + eta_2) * (+-1/2) * (x x' + 1).
    x = np.array([[1.0], [2.0], [-3.0]])
    y = np.array([0, 0, 1])
    features = LastLayerFeatures.from_outputs(np.zeros((3, 2)), x, y)
    lrs = [0.1, 0.3]
    sign = np.where(y[:, None] == y[None, :], 0.5, -0.5)
    expected = 0.4 * sign * (x @ x.T + 1.0)
    all_rows = np.arange(3)
    np.testing.assert_allclose(influence_matrix([features, features], lrs, all_rows, all_rows), expected)
    np.testing.assert_allclose(self_influence([features, features], lrs), 0.4 * 0.5 * (x[:, 0] ** 2 + 1))


@pytest.mark.parametrize("modality", ["image", "table"])
def test_last_layer_kernel_equals_exact_head_gradients(modality):
    model = tiny_classifier(modality)
    x, y = tiny_inputs(modality, n=9)
    factorised = last_layer_features(model, x, y)
    dense = DenseFeatures(projected_gradients(model, x, y, None, ["backbone.head"]))
    rows = np.arange(len(x))
    np.testing.assert_allclose(factorised.kernel(rows, rows), dense.kernel(rows, rows), rtol=1e-4, atol=1e-6)


def test_self_influence_is_the_diagonal_of_the_influence_matrix():
    x, y = tiny_inputs("image", n=10)
    features = [last_layer_features(tiny_classifier("image", seed=s), x, y) for s in (0, 1, 2)]
    lrs = [0.5, 0.2, 0.05]
    rows = np.arange(10)
    np.testing.assert_allclose(self_influence(features, lrs), np.diag(influence_matrix(features, lrs, rows, rows)), rtol=1e-10)
    cosine = influence_matrix(features, lrs, rows, rows, cosine=True)
    np.testing.assert_allclose(np.diag(cosine), sum(lrs), rtol=1e-10)
    assert np.all(np.abs(cosine) <= sum(lrs) + 1e-9)


def test_top_influences_match_a_full_sort_and_do_not_depend_on_chunking():
    x, y = tiny_inputs("image", n=30)
    features = [last_layer_features(tiny_classifier("image", seed=s), x, y) for s in (0, 1)]
    lrs = [0.3, 0.1]
    queries, candidates = np.arange(20, 30), np.arange(20)
    full = influence_matrix(features, lrs, queries, candidates)
    for chunk in (1, 3, 100):
        pro, pro_value, opp, opp_value = top_influences(features, lrs, queries, candidates, 4, chunk_size=chunk)
        np.testing.assert_array_equal(pro, candidates[np.argsort(-full, axis=1, kind="stable")[:, :4]])
        np.testing.assert_array_equal(opp, candidates[np.argsort(full, axis=1, kind="stable")[:, :4]])
        np.testing.assert_allclose(pro_value, -np.sort(-full, axis=1)[:, :4])
        np.testing.assert_allclose(opp_value, np.sort(full, axis=1)[:, :4])


def test_topk_table_is_long_and_ranked():
    ids = np.array([f"e{i}" for i in range(6)], dtype=object)
    result = (np.array([[0, 1]]), np.array([[2.0, 1.0]]), np.array([[3, 2]]), np.array([[-5.0, -1.0]]))
    table = topk_table(ids, np.array([5]), result, "dot")
    assert table.to_dict("list") == {
        "test_id": ["e5"] * 4, "train_id": ["e0", "e1", "e3", "e2"], "kind": ["proponent"] * 2 + ["opponent"] * 2,
        "rank": [1, 2, 1, 2], "influence": [2.0, 1.0, -5.0, -1.0], "variant": ["dot"] * 4,
    }


def test_batch_size_does_not_change_self_influence(image_model, image_data):
    x, y = image_data
    small, large = (fused_pass(image_model, x, None, b) for b in (3, 512))
    a = LastLayerFeatures.from_outputs(small.logits, small.embeddings, y.numpy()).squared_norms()
    b = LastLayerFeatures.from_outputs(large.logits, large.embeddings, y.numpy()).squared_norms()
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_agrees_with_captum_tracincp_fast(tmp_path):
    influence = pytest.importorskip("captum.influence", reason="captum is an optional test dependency (pip install captum)")
    x, y = tiny_inputs("image", n=40)
    lrs = [0.4, 0.2, 0.1]
    paths = []
    for seed, lr in enumerate(lrs):
        paths.append(tmp_path / f"c{seed}.pt")
        torch.save({"model": tiny_classifier("image", seed=seed).state_dict(), "lr": lr}, paths[-1])

    def load(model, path):
        checkpoint = torch.load(path, weights_only=True)
        model.load_state_dict(checkpoint["model"])
        return checkpoint["lr"]

    model = tiny_classifier("image")
    captum = influence.TracInCPFast(
        model, model.backbone.head, torch.utils.data.TensorDataset(x, y), [str(p) for p in paths], load,
        loss_fn=torch.nn.CrossEntropyLoss(reduction="sum"), batch_size=16,
    )
    theirs = captum.self_influence(show_progress=False).numpy()
    features = [last_layer_features(tiny_classifier("image", seed=s), x, y) for s in range(3)]
    # Captum's TracInCPFast leaves out the head's bias gradient; ours includes it as a constant-1
    # feature. Without that column the two are the same numbers.
    without_bias = [LastLayerFeatures(f.errors, f.inputs[:, :-1]) for f in features]
    ours = self_influence(without_bias, lrs)
    assert np.corrcoef(ours, theirs)[0, 1] >= 0.999
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    test_rows, train_rows = np.arange(30, 40), np.arange(30)
    captum_matrix = influence.TracInCPFast(
        model, model.backbone.head, torch.utils.data.TensorDataset(x[:30], y[:30]), [str(p) for p in paths], load,
        loss_fn=torch.nn.CrossEntropyLoss(reduction="sum"), batch_size=16,
    ).influence((x[30:], y[30:]), show_progress=False).numpy()
    np.testing.assert_allclose(influence_matrix(without_bias, lrs, test_rows, train_rows), captum_matrix, rtol=1e-4, atol=1e-7)
