import numpy as np
import pandas as pd
import pytest

from exemplar.errors import ExemplarError
from exemplar.scoring import audit
from exemplar.scoring.audit import CheckpointRef, ScoringData, influence_queries, score_examples
from exemplar.scoring.config import DEFAULT_SIGNALS, ScoreConfig
from exemplar.scoring.gradients import GaussianProjector, gradient_sketch, iter_example_gradients
from exemplar.scoring.signals import el2n_score
from tests.unit.scoring.conftest import tiny_classifier, tiny_inputs

LRS = [0.3, 0.2, 0.1]


def refs(seeds=(0, 1, 2), epochs=(2, 4, 6)) -> list[CheckpointRef]:
    return [CheckpointRef(e, lambda s=s, lr=lr: (tiny_classifier("image", seed=s), lr)) for s, e, lr in zip(seeds, epochs, LRS)]


def tiny_data(n: int = 24, train: int = 18) -> ScoringData:
    x, y = tiny_inputs("image", n=n)
    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=n)  # stands in for the cross-fitted folds
    return ScoringData(np.array([f"e{i:02d}" for i in range(n)], dtype=object), x, y, np.arange(n) < train, probs)


def dynamics(data: ScoringData) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    ids = data.ids[data.is_train]
    return pd.DataFrame({
        "id": np.repeat(ids, 3), "epoch": np.tile([1, 2, 3], len(ids)),
        "correct": rng.random(3 * len(ids)) > 0.4, "label_probability": rng.random(3 * len(ids)).astype(np.float32),
    })


def config(**changes) -> ScoreConfig:
    return ScoreConfig(**{"outlier_k": 3, "influence_top_k": 2, "el2n_epoch": 4, **changes})


def test_every_default_signal_is_computed_with_the_shared_format():
    data = tiny_data()
    result = score_examples(data, refs(), config(), dynamics=[dynamics(data)])
    assert list(result.scores.columns) == ["id", "pred"] + [f"{n}_score" for n in DEFAULT_SIGNALS] + ["is_label_issue"]
    assert result.scores["id"].tolist() == data.ids.tolist()
    dynamic = result.scores[["forgetting_score", "low_confidence_score", "variability_score"]]
    assert dynamic[data.is_train].notna().all().all() and dynamic[~data.is_train].isna().all().all()
    assert result.scores["is_label_issue"].dtype == bool
    others = result.scores.drop(columns=dynamic.columns).drop(columns=["id", "is_label_issue"])
    assert np.isfinite(others.to_numpy(dtype=float)).all()
    assert result.summary["el2n_checkpoint_epoch"] == 4
    assert result.summary["checkpoints"] == [2, 4, 6] and result.summary["learning_rates"] == LRS


def test_influence_table_covers_each_test_row_variant_and_kind():
    data = tiny_data()
    table = score_examples(data, refs(), config(signals=["loss"])).influence
    assert set(table["test_id"]) == set(data.ids[~data.is_train])
    assert set(table["train_id"]) <= set(data.ids[data.is_train])
    assert len(table) == 6 * 2 * 2 * 2  # test rows x k x (proponent, opponent) x (dot, cosine)
    cosine = table[table["variant"] == "cosine"]["influence"]
    assert np.all(np.abs(cosine) <= sum(LRS) + 1e-9)


def test_extra_ids_are_explained_too():
    data = tiny_data()
    assert influence_queries(data, ["e03"]).tolist() == [3] + list(range(18, 24))


def test_exact_selected_layer_tracin_equals_the_factorised_last_layer():
    data = tiny_data()
    fast = score_examples(data, refs(), config(signals=["self_influence"], influence_top_k=0))
    exact = score_examples(data, refs(), config(
        signals=["self_influence"], influence_top_k=0, tracin_scope="layers", tracin_layers=["backbone.head"], projection_dim=0,
    ))
    np.testing.assert_allclose(fast.scores["self_influence_score"], exact.scores["self_influence_score"], rtol=1e-4)


def test_all_parameter_self_influence_is_exact_and_influence_is_projected():
    data = tiny_data()
    projected = score_examples(data, refs(), config(signals=["self_influence"], tracin_scope="all", projection_dim=4096))
    exact = sum(
        lr * np.concatenate([g.numpy() for g in iter_example_gradients(model, data.x, data.labels)]) ** 2
        for model, lr in (r.load() for r in refs())
    ).sum(axis=1)
    np.testing.assert_allclose(projected.scores["self_influence_score"], exact, rtol=1e-5)
    assert projected.influence is not None and len(projected.influence) == 6 * 2 * 2 * 2
    cosine = projected.influence[projected.influence["variant"] == "cosine"]["influence"]
    assert np.all(np.abs(cosine) <= sum(LRS) + 1e-9)


def test_el2n_is_averaged_over_the_seeds_early_checkpoints():
    data = tiny_data()
    other = [CheckpointRef(4, lambda: (tiny_classifier("image", seed=7), 0.2))]
    result = score_examples(data, refs(), config(signals=["el2n"], influence_top_k=0), other_seed_early=other)
    logits = [m(data.x).detach().numpy() for m in (tiny_classifier("image", seed=1), tiny_classifier("image", seed=7))]
    expected = np.mean([el2n_score(z, data.labels.numpy()) for z in logits], axis=0)
    np.testing.assert_allclose(result.scores["el2n_score"], expected, rtol=1e-5)
    assert result.summary["seeds"] == 2


def test_vog_with_predicted_labels_and_identical_checkpoints():
    data = tiny_data()
    same = [CheckpointRef(e, lambda: (tiny_classifier("image", seed=0), 0.1)) for e in (1, 2, 3)]
    result = score_examples(data, same, config(signals=["vog"], influence_top_k=0, vog_label="predicted"))
    assert np.all(result.scores["vog_score"] == 0.0)  # raw VoG is 0 everywhere, so every z-score is 0


def test_unknown_signal_is_a_user_error():
    with pytest.raises(ExemplarError, match="unknown score"):
        score_examples(tiny_data(), refs(), config(signals=["loss", "vibes"]))


LABEL_SIGNALS = ["loss", "margin", "el2n", "confidently_wrong", "outlier"]


def counted_fused_passes(monkeypatch) -> list:
    """Wrap the real fused pass to record the `targets` argument of every call."""
    calls, real = [], audit.fused_pass
    monkeypatch.setattr(audit, "fused_pass", lambda model, x, targets, batch: calls.append(targets) or real(model, x, targets, batch))
    return calls


@pytest.mark.parametrize("method", ["kronecker", "vmap"])
def test_parameter_tracin_takes_logits_from_its_gradient_pass_and_scores_stay_identical(monkeypatch, method):
    data = tiny_data()
    reference = score_examples(data, refs(), config(signals=LABEL_SIGNALS, influence_top_k=0))  # a fused pass per checkpoint
    calls = counted_fused_passes(monkeypatch)
    result = score_examples(data, refs(), config(signals=LABEL_SIGNALS + ["self_influence"], tracin_scope="all", gradient_method=method))
    assert len(calls) == (0 if method == "kronecker" else 2)  # vmap has no batched forward: early + final need their own
    columns = ["pred"] + [f"{name}_score" for name in LABEL_SIGNALS]
    np.testing.assert_allclose(result.scores[columns].to_numpy(float), reference.scores[columns].to_numpy(float), rtol=1e-6, atol=1e-7)


def test_self_influence_is_the_same_whether_or_not_the_fused_pass_runs(monkeypatch):
    data = tiny_data()
    base = {"tracin_scope": "all", "influence_top_k": 0, "vog_window": "all"}
    with_vog = score_examples(data, refs(), config(signals=["self_influence", "vog"], **base))  # fused pass at every checkpoint
    calls = counted_fused_passes(monkeypatch)
    alone = score_examples(data, refs(), config(signals=["self_influence"], **base))
    assert calls == []
    np.testing.assert_array_equal(alone.scores["self_influence_score"], with_vog.scores["self_influence_score"])


def test_projected_norm_self_influence_sums_lr_times_squared_projections():
    data = tiny_data()
    result = score_examples(data, refs(), config(signals=["self_influence"], tracin_scope="all", projection_dim=64, tracin_exact_norms=False))
    expected = 0.0
    for model, lr in (r.load() for r in refs()):
        _, sketch = gradient_sketch(model, data.x, data.labels, GaussianProjector(64, 0), None, 128, True, "kronecker")
        expected = expected + lr * (sketch.astype(np.float64) ** 2).sum(axis=1)
    np.testing.assert_allclose(result.scores["self_influence_score"], expected, rtol=1e-5)
    exact = score_examples(data, refs(), config(signals=["self_influence"], tracin_scope="all", projection_dim=64))
    assert not np.allclose(result.scores["self_influence_score"], exact.scores["self_influence_score"], rtol=1e-3)
