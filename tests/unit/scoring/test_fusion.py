import numpy as np
import pandas as pd
import pytest

from exemplar.scoring.fusion import FUSION_METHODS, family_evidence, fuse_scores, robust_z


def planted(n: int = 200) -> pd.DataFrame:
    """Noise in two label signals and one atypicality signal; row 3 is mislabelled, row 5 atypical."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "id": [f"r{i:03d}" for i in range(n)],
        "loss_score": rng.gamma(1.0, size=n), "margin_score": rng.normal(size=n), "outlier_score": rng.gamma(2.0, size=n),
    })
    frame.loc[3, ["loss_score", "margin_score"]] = [30.0, 8.0]
    frame.loc[5, "outlier_score"] = 40.0
    return frame


@pytest.mark.parametrize("method", FUSION_METHODS)
def test_audit_rank_is_a_permutation_and_follows_the_score(method):
    fused = fuse_scores(planted(), ["loss_score", "margin_score", "outlier_score"], method)
    assert sorted(fused["audit_rank"]) == list(range(1, 201))
    ordered = fused.sort_values("audit_rank")["audit_score"].to_numpy()
    assert np.all(np.diff(ordered) <= 0)


def test_one_queue_puts_both_kinds_of_problem_first():
    fused = fuse_scores(planted(), ["loss_score", "margin_score", "outlier_score"])
    assert set(fused.nsmallest(2, "audit_rank")["id"]) == {"r003", "r005"}


def test_nan_scores_are_skipped_not_counted_as_zero():
    frame = planted()
    frame["forgetting_score"] = np.where(np.arange(200) < 150, np.random.default_rng(1).random(200), np.nan)
    columns = ["loss_score", "margin_score", "outlier_score", "forgetting_score"]
    fused = fuse_scores(frame, columns)
    assert np.isfinite(fused["audit_score"]).all()
    label = family_evidence(robust_z(frame[columns]))["label"]
    expected = robust_z(frame[["loss_score", "margin_score"]]).mean(axis=1)
    np.testing.assert_allclose(label[150:], expected[150:])  # rows without dynamics: mean of what exists


def test_robust_z_uses_median_and_mad_with_a_fallback():
    z = robust_z(pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 100.0], "b": [0.0, 0.0, 0.0, 0.0, 2.0]}))
    np.testing.assert_allclose(z["a"], (np.array([1, 2, 3, 4, 100]) - 3) / 1.4826)
    np.testing.assert_allclose(z["b"], np.array([0, 0, 0, 0, 2.0]) / np.std([0, 0, 0, 0, 2.0]))


def test_no_columns_gives_zero_scores_and_id_order():
    fused = fuse_scores(pd.DataFrame({"id": ["b", "a"]}), [])
    assert fused["audit_score"].tolist() == [0.0, 0.0]
    assert fused["audit_rank"].tolist() == [2, 1]


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="fusion method"):
        fuse_scores(planted(), ["loss_score"], "vote")
