import numpy as np
import pandas as pd
import pytest

from exemplar.scoring.fusion import (FUSION_METHODS, agreement_weights, family_evidence, fuse_scores, fused_values, fused_values_for_recipes,
                                     family_values, label_backbone, normal_scores, null_level, robust_z,
                                     class_robust_z, held_out_stacking_weight, source_balanced_mean, source_weights,
                                     tail_levels, trimmed)


def planted(n: int = 200) -> pd.DataFrame:
    """Noise in two label signals and one atypicality signal; row 3 is mislabelled, row 5 atypical."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "id": [f"r{i:03d}" for i in range(n)],
        "loss_score": rng.gamma(1.0, size=n), "margin_score": rng.normal(size=n), "input_outlier_score": rng.gamma(2.0, size=n),
    })
    frame.loc[3, ["loss_score", "margin_score"]] = [30.0, 8.0]
    frame.loc[5, "input_outlier_score"] = 40.0
    return frame


@pytest.mark.parametrize("method", FUSION_METHODS)
def test_audit_rank_is_a_permutation_and_follows_the_score(method):
    fused = fuse_scores(planted(), ["loss_score", "margin_score", "input_outlier_score"], method)
    assert sorted(fused["audit_rank"]) == list(range(1, 201))
    ordered = fused.sort_values("audit_rank")["audit_score"].to_numpy()
    assert np.all(np.diff(ordered) <= 0)


def test_one_queue_puts_both_kinds_of_problem_first():
    fused = fuse_scores(planted(), ["loss_score", "margin_score", "input_outlier_score"])
    assert set(fused.nsmallest(2, "audit_rank")["id"]) == {"r003", "r005"}


def test_atypical_rank_orders_each_split_by_the_atypical_family_alone():
    """A row whose input stands out but whose label evidence is ordinary heads the atypical queue while
    the label-led audit queue puts it far down; test rows get their own 1..n."""
    frame = planted()
    frame.loc[5, "input_outlier_score"] = 9.0  # atypical, but below what lifts it in the fused queue
    frame.loc[7, ["loss_score", "margin_score"]] = [20.0, 6.0]
    frame["split"] = np.where(np.arange(200) < 150, "train", "test")
    frame.loc[160, "input_outlier_score"] = 50.0
    fused = fuse_scores(frame, ["loss_score", "margin_score", "input_outlier_score"])
    train, test = fused[fused["split"] == "train"], fused[fused["split"] == "test"]
    assert sorted(train["atypical_rank"]) == list(range(1, 151)) and sorted(test["atypical_rank"]) == list(range(1, 51))
    assert train.set_index("id").at["r005", "atypical_rank"] == 1 and train.set_index("id").at["r005", "audit_rank"] > 2
    assert test.set_index("id").at["r160", "atypical_rank"] == 1
    outlier = train.sort_values("atypical_rank")["input_outlier_score"].to_numpy()
    assert np.all(np.diff(outlier) <= 0)  # one atypical member: its order, whatever the label evidence


def test_atypical_rank_takes_the_max_of_its_members_whatever_the_recipe():
    """Standing out in one space is enough for the atypical order of a recipe that fuses both distances (the
    default of rounds 1-15), also when it averages the atypical family (any_of=()): a row extreme in input space
    alone leads it, and so does one extreme in embedding space alone. A recipe that leaves the embedding distance
    out (the default since the sixteenth round) orders by the input-space column, whatever the embedding
    distance says."""
    frame = planted().assign(outlier_score=np.random.default_rng(1).gamma(2.0, size=200))
    frame.loc[9, "input_outlier_score"] = 60.0
    frame.loc[5, "input_outlier_score"] = 1.0
    frame.loc[5, "outlier_score"] = 40.0  # row 5: extreme in embedding space alone
    frame.loc[11, ["outlier_score", "input_outlier_score"]] = [9.0, 9.0]  # high in both, extreme in neither
    columns = ["loss_score", "margin_score", "outlier_score", "input_outlier_score"]
    for any_of in ((), ("atypical",)):
        ranks = fuse_scores(frame, columns, any_of=any_of, exclude=()).set_index("id")["atypical_rank"]
        assert ranks["r005"] <= 2 and ranks["r009"] <= 2, (any_of, ranks["r005"], ranks["r009"])
    from exemplar.scoring.fusion import DEFAULT

    z = class_robust_z(frame[["outlier_score", "input_outlier_score"]], None, DEFAULT.spread)  # the recipe's spread
    expected = _ranks_by(z.max(axis=1).to_numpy(), frame["id"].to_numpy())
    np.testing.assert_array_equal(fuse_scores(frame, columns, any_of=(), exclude=()).set_index("id").loc[frame["id"], "atypical_rank"], expected)
    input_only = fuse_scores(frame, columns).set_index("id").loc[frame["id"], "atypical_rank"]  # the default
    np.testing.assert_array_equal(input_only, _ranks_by(frame["input_outlier_score"].to_numpy(), frame["id"].to_numpy()))
    assert input_only["r005"] > 100  # the embedding distance alone does not lead the default's order


def _ranks_by(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """1-based ranks by descending value, ties by id: the reference for a capped family's order (no sparse cap here)."""
    order = sorted(range(len(values)), key=lambda i: (-values[i], str(ids[i])))
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(1, len(values) + 1)
    return rank


def test_no_atypical_rank_without_an_atypical_signal():
    fused = fuse_scores(planted(), ["loss_score", "margin_score"])
    assert "atypical_rank" not in fused


def test_upper_mad_spread_measures_the_side_the_evidence_is_on():
    """Hand-derived on a column piled near its floor with a long upper tail; a sparse column keeps the
    std fallback; on a normal column both spreads estimate sigma."""
    skewed = pd.DataFrame({"a": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 100.0]})
    # median 0; |deviations| median 0 -> MAD 0: sparse, std fallback in both spreads
    np.testing.assert_allclose(robust_z(skewed, "upper_mad"), robust_z(skewed, "mad"))
    piled = pd.DataFrame({"a": [0.0, 0.1, 0.1, 0.2, 0.2, 0.3, 4.0, 8.0, 12.0, 90.0]})
    # median 0.25; |dev| sorted .05 .05 .05 .15 .15 .25 3.75 ... -> MAD = (0.15 + 0.25) / 2 = 0.2
    # positive deviations: 0.05, 3.75, 7.75, 11.75, 89.75 -> median 7.75
    upper = robust_z(piled, "upper_mad")["a"].to_numpy()
    np.testing.assert_allclose(upper, (piled["a"].to_numpy() - 0.25) / (7.75 * 1.4826))
    np.testing.assert_allclose(robust_z(piled, "mad")["a"].to_numpy(), (piled["a"].to_numpy() - 0.25) / (0.2 * 1.4826))
    normal = pd.DataFrame({"a": np.random.default_rng(0).normal(3.0, 2.0, 20001)})
    assert abs(float(robust_z(normal, "upper_mad")["a"].std()) - 1.0) < 0.03  # consistent at the normal
    spread_of = lambda z: float(normal["a"].std() / z["a"].std())  # noqa: E731
    assert abs(spread_of(robust_z(normal, "upper_mad")) - spread_of(robust_z(normal, "mad"))) < 0.05


def test_nan_scores_are_skipped_not_counted_as_zero():
    frame = planted()
    frame["forgetting_score"] = np.where(np.arange(200) < 150, np.random.default_rng(1).random(200), np.nan)
    columns = ["loss_score", "margin_score", "input_outlier_score", "forgetting_score"]
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
    with pytest.raises(ValueError, match="fusion.method"):
        fuse_scores(planted(), ["loss_score"], "vote")


# ------------------------------------------------------------- declared directions, families, groups

from exemplar.scoring.registry import SIGNALS  # noqa: E402


def hand_made(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Every declared signal as mild noise over training rows of two classes (no split column)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": [f"r{i:03d}" for i in range(n)], "label": np.arange(n) % 2})
    for name in SIGNALS:
        if name != "label_conflict":  # the boolean is_label_conflict: its own test below
            frame[f"{name}_score"] = rng.normal(size=n)
    return frame


@pytest.mark.parametrize("name", sorted(set(SIGNALS) - {"label_conflict"}))
def test_fused_direction_of_each_declared_signal(name):
    """Moving one signal on one row in its declared direction puts that row first, the other way never
    raises it, and a signal declared 0 (left out of the fusion) leaves audit_score untouched. Signals
    the default's member set leaves out (with the held-out ensemble present, the held-out models' own views) are
    checked with every member in (``exclude=()``, ``label="members"``), and leave the default's audit_score
    untouched. Under ``conflict="copies"`` (the twenty-first round's default) the ensemble is computed from the held-out confidences
    (with the copies), so those two enter the default through it and the stored ensemble column is checked in the
    recipe that reads it (``label="ensemble"``, ``conflict="flag"``)."""
    from exemplar.scoring.fusion import DEFAULT, ENSEMBLE_COLUMN, HELD_OUT_CONFIDENCES, fused_columns

    frame = hand_made()
    columns = [c for c in frame.columns if c.endswith("_score")]
    column = f"{name}_score"
    fused = fused_columns(columns, DEFAULT.exclude, DEFAULT.label)
    recomputed = DEFAULT.conflict == "copies" and ENSEMBLE_COLUMN in fused  # the ensemble from the held-out confidences
    in_default = (column in fused and not (recomputed and column == ENSEMBLE_COLUMN)) or (recomputed and column in HELD_OUT_CONFIDENCES)
    other_label = "ensemble" if column == ENSEMBLE_COLUMN else "members"  # the family that fuses it
    members = {} if in_default or not SIGNALS[name].direction else {"exclude": (), "label": other_label, "conflict": "flag"}
    before = fuse_scores(frame, columns, **members)
    untouched = fuse_scores(frame, columns)
    frame.loc[17, column] = 50.0
    after = fuse_scores(frame, columns, **members)
    direction = SIGNALS[name].direction
    if direction:
        frame.loc[17, column] = 50.0 * direction  # the suspicious way: the row goes first
        assert fuse_scores(frame, columns, **members).loc[17, "audit_rank"] == 1, name
        frame.loc[17, column] = -50.0 * direction  # the other way: the row must not rise
        assert fuse_scores(frame, columns, **members).loc[17, "audit_score"] <= before.loc[17, "audit_score"] + 1e-9
    else:
        np.testing.assert_allclose(after["audit_score"], before["audit_score"])
    if members:  # left out by the default: moving it changes nothing there
        np.testing.assert_allclose(fuse_scores(frame, columns)["audit_score"], untouched["audit_score"])


def test_training_and_test_rows_are_ranked_separately():
    frame = hand_made(80).assign(split=["train", "test", "train", "train"] * 20)
    fused = fuse_scores(frame, [c for c in frame.columns if c.endswith("_score")])
    train, test = fused[fused["split"] == "train"], fused[fused["split"] == "test"]
    assert sorted(train["audit_rank"]) == list(range(1, 61)) and train["audit_rank_test"].isna().all()
    assert sorted(test["audit_rank_test"]) == list(range(1, 21)) and test["audit_rank"].isna().all()
    # a test row with huge loss does not change the training ranking
    moved = frame.copy()
    moved.loc[moved["split"] == "test", "loss_score"] *= 100
    again = fuse_scores(moved, [c for c in frame.columns if c.endswith("_score")])
    np.testing.assert_allclose(again.loc[frame["split"] == "train", "audit_rank"], train["audit_rank"])


def test_by_class_normalises_each_column_within_the_given_class():
    """Class 1 is uniformly harder (every label signal + 5): without per-class normalisation its rows fill
    the queue (the default since round 6, which the suite chose: a class's offset there was mostly its noise
    rate); with ``by_class``, the planted row of class 0 comes first."""
    frame = hand_made(100)
    frame.loc[frame["label"] == 1, ["loss_score", "margin_score", "oos_confidence_score"]] += 5.0
    frame.loc[4, ["loss_score", "margin_score", "oos_confidence_score"]] = 4.0  # class 0: clear outlier in its class
    columns = ["loss_score", "margin_score", "oos_confidence_score"]
    assert fuse_scores(frame, columns, by_class=True).loc[4, "audit_rank"] == 1
    assert fuse_scores(frame, columns, by_class=False).loc[4, "audit_rank"] > 1


@pytest.mark.parametrize("method", ["label_backbone", "family_z_max"])
def test_a_sparse_single_member_family_cannot_take_over_the_queue(method):
    frame = hand_made(200)
    columns = [c for c in frame.columns if c.endswith("_score")]
    frame["cie_score"] = 0.0
    # row 50: the clearest label evidence (with the default's single held-out member, 5 MADs; a member mean
    # over thirteen noisy columns would need far less)
    frame.loc[50, [c for c in columns if SIGNALS[c.removesuffix("_score")].family == "label"]] = 5.0
    without = fuse_scores(frame, columns, method)
    frame.loc[[10, 11, 12, 13, 14], "cie_score"] = 2.0  # MAD 0: std fallback would give z ~ 6+
    fused = fuse_scores(frame, columns, method)
    assert fused.loc[50, "audit_rank"] == 1
    sparse = fused.loc[[10, 11, 12, 13, 14], "audit_rank"]
    assert sparse.min() > 1  # without the cap the five CIE rows take ranks 1-5
    if method == "family_z_max":
        assert sparse.max() <= 20  # still reviewed early, not ignored
    else:  # the backbone: capped below the null level it adds nothing, and never pushes a row down
        assert (fused.loc[[10, 11, 12, 13, 14], "audit_score"] >= without.loc[[10, 11, 12, 13, 14], "audit_score"] - 1e-9).all()


def test_label_conflicts_feed_the_label_family():
    """The duplicates' label evidence raises a row: the 0/1 flag (``conflict="flag"``; the default ``share`` reads it
    where keep.parquet's ``label_disagreement`` is absent), and with ``conflict="copies"`` an exact copy labelled
    otherwise, read from ``duplicate_of`` and ``label``."""
    from exemplar.scoring.fusion import DEFAULT

    frame = hand_made(100)
    columns = [c for c in frame.columns if c.endswith("_score")]
    plain = fuse_scores(frame, columns, conflict="flag")
    frame["is_label_conflict"] = False
    frame.loc[30, "is_label_conflict"] = True
    flagged = fuse_scores(frame, columns, conflict="flag")
    assert flagged.loc[30, "audit_rank"] < plain.loc[30, "audit_rank"]
    assert DEFAULT.conflict == "share" and "label_disagreement" not in frame.columns
    np.testing.assert_array_equal(fuse_scores(frame, columns)["audit_score"], flagged["audit_score"])
    copies = hand_made(100)
    plain = fuse_scores(copies, columns, conflict="copies")
    copies["duplicate_of"] = ""
    copies.loc[31, "duplicate_of"] = "r030"  # r030 is labelled 0, its copy r031 1
    outvoted = fuse_scores(copies, columns, conflict="copies")
    assert (outvoted.loc[[30, 31], "audit_rank"] < plain.loc[[30, 31], "audit_rank"]).all()


def test_the_share_of_disagreeing_copies_lifts_the_outvoted_row_most():
    """``conflict="share"``: a group of four identical inputs labelled a, a, a, b. The flag lifts all four
    alike; the share (label_disagreement: b 1, each a 1/3) lifts the outvoted b row most, and the a rows
    still above where they stand without duplicates. With the fourteenth round's default, the held-out ensemble
    as the label family, which is what the share was declared for."""
    frame = hand_made(100)
    columns = [c for c in frame.columns if c.endswith("_score")]
    s5 = {"label": "ensemble", "balance": "members", "spread": "upper_mad", "alpha": 0.01}
    plain = fuse_scores(frame, columns, conflict="flag", **s5)  # no flag column yet: no duplicates' evidence
    group = [30, 31, 32, 33]  # row 33 is the one labelled otherwise
    frame["is_label_conflict"] = frame.index.isin(group)
    frame["label_disagreement"] = 0.0
    frame.loc[group, "label_disagreement"] = [1 / 3, 1 / 3, 1 / 3, 1.0]
    flagged, shared = fuse_scores(frame, columns, conflict="flag", **s5), fuse_scores(frame, columns, conflict="share", **s5)
    lift = lambda fused: fused.loc[group, "audit_score"].to_numpy() - plain.loc[group, "audit_score"].to_numpy()  # noqa: E731
    assert (lift(flagged) > 0).all() and (lift(shared) > 0).all()
    assert lift(shared)[3] > lift(shared)[:3].max()
    # the shipped default (the network's views beside the ensemble, the share) does the same
    plain_default = fuse_scores(frame.drop(columns=["is_label_conflict", "label_disagreement"]), columns)
    shared_default = fuse_scores(frame, columns)
    lift_default = shared_default.loc[group, "audit_score"].to_numpy() - plain_default.loc[group, "audit_score"].to_numpy()
    assert (lift_default > 0).all() and lift_default[3] > lift_default[:3].max()
    # without the share column the flag is read
    np.testing.assert_allclose(fuse_scores(frame.drop(columns=["label_disagreement"]), columns, conflict="share", **s5)["audit_score"],
                               flagged["audit_score"])


def test_lift_raises_the_suspected_copy_of_a_disputed_pair_and_not_its_twin():
    """``conflict="lift"`` (the twenty-fourth round's candidate): two identical inputs under two labels, both with
    share 1. As a member (``share``) the share lifts both rows alike; as a multiplier of the label family's positive
    evidence it lifts the row the models already suspect (row 33: high loss and held-out suspicion) and leaves its twin
    (row 32, label evidence below the median) where it stands without duplicates. No duplicates column is fused."""
    frame = hand_made(100)
    frame["oos_confidence_score"] = frame["loss_score"].rank(pct=True) * 0.5
    frame["population_confidence_score"] = frame["oos_confidence_score"]
    frame["ensemble_confidence_score"] = frame["oos_confidence_score"]
    frame.loc[32, ["loss_score", "oos_confidence_score", "population_confidence_score", "ensemble_confidence_score"]] = [
        frame["loss_score"].min(), 0.01, 0.01, 0.01]
    frame.loc[33, ["loss_score", "oos_confidence_score", "population_confidence_score", "ensemble_confidence_score"]] = [
        frame["loss_score"].quantile(0.9), 0.45, 0.45, 0.45]
    columns = [c for c in frame.columns if c.endswith("_score")]
    plain = fuse_scores(frame, columns, conflict="lift")  # no duplicates' column: nothing to lift by
    frame["is_label_conflict"] = frame.index.isin([32, 33])
    frame["label_disagreement"] = np.where(frame["is_label_conflict"], 1.0, 0.0)
    shared, lifted = fuse_scores(frame, columns, conflict="share"), fuse_scores(frame, columns, conflict="lift")
    rise = lambda fused: fused.loc[[32, 33], "audit_score"].to_numpy() - plain.loc[[32, 33], "audit_score"].to_numpy()  # noqa: E731
    assert (rise(shared) > 0).all()  # the member lifts both
    assert rise(lifted)[1] > 0 and rise(lifted)[0] == pytest.approx(0.0, abs=1e-12)
    assert lifted.loc[33, "audit_rank"] < plain.loc[33, "audit_rank"]
    others = ~frame.index.isin([32, 33])
    np.testing.assert_array_equal(lifted.loc[others, "audit_rank"].notna(), plain.loc[others, "audit_rank"].notna())


def test_lifted_by_copies_multiplies_only_positive_evidence():
    """Hand-derived: evidence (2, -1, 0, 3, NaN) with shares (1, 1, 1, 0.5, 1) -> (4, -1, 0, 4.5, NaN)."""
    from exemplar.scoring.fusion import lifted_by_copies

    lifted = lifted_by_copies(pd.Series([2.0, -1.0, 0.0, 3.0, np.nan]), np.array([1.0, 1.0, 1.0, 0.5, 1.0]))
    np.testing.assert_array_equal(lifted.to_numpy(), [4.0, -1.0, 0.0, 4.5, np.nan])


# ------------------------------------------------------------- the label backbone and its parts, by hand


def test_null_level_is_the_bonferroni_normal_quantile():
    assert null_level(100, 0.05) == pytest.approx(3.2905, abs=1e-4)  # z of 0.05 / 100 = 0.0005
    assert null_level(1, 0.5) == pytest.approx(0.0, abs=1e-12)


def test_label_backbone_adds_other_families_only_beyond_their_null_level():
    z = pd.DataFrame({"label": [1.0, 2.0, 0.0, np.nan], "atypical": [0.0, 2.0, 10.0, 9.0], "compression": [3.0, 0.0, 2.5, 0.0]})
    level = null_level(4, 0.05)  # z of 0.0125 = 2.2414
    expected = [1.0 + (3.0 - level), 2.0, 0.0 + (10.0 - level) + (2.5 - level), 0.0 + (9.0 - level)]  # NaN label -> the lowest
    np.testing.assert_allclose(label_backbone(z, 0.05), expected)
    np.testing.assert_allclose(label_backbone(z.drop(columns="label"), 0.05), [3.0, 2.0, 10.0, 9.0])  # no backbone: max


def test_trimmed_family_mean_by_hand():
    members = pd.DataFrame({"a": [600.0, 1.0, 2.0, np.nan], "b": [5.0, 1.0, 4.0, 3.0], "c": [4.0, 1.0, np.nan, 1.0],
                            "d": [3.0, 1.0, 6.0, np.nan]})
    kept = trimmed(members)
    # row 0 drops 600 and 3; row 1 (all tied) one max and one min; row 2 drops 6 and 2; row 3 (2 present) keeps both
    np.testing.assert_allclose(kept.mean(axis=1), [4.5, 1.0, 4.0, 2.0])
    assert kept.notna().sum(axis=1).tolist() == [2, 2, 1, 2]
    label = members.set_axis(["self_influence_score", "loss_score", "margin_score", "low_confidence_score"], axis=1)
    np.testing.assert_allclose(family_evidence(label, trim=True)["label"], [4.5, 1.0, 4.0, 2.0])
    np.testing.assert_allclose(family_evidence(label)["label"], [153.0, 1.0, 4.0, 2.0])  # untrimmed: 600 decides row 0


def test_tail_levels_by_hand():
    # z = 0..7: 75th percentile u = 5.25, exceedances 0.75, 1.75 -> median 1.25, b = 1.25 / ln 2;
    # level u + b ln(0.25 * 8 / 0.05) = 5.25 + 1.25 * ln(40) / ln 2 = 11.9024, above the normal 2.7344
    z = pd.DataFrame({"atypical": np.arange(8.0), "flat": np.zeros(8)})
    levels = tail_levels(z, 0.05)
    assert levels["atypical"] == pytest.approx(5.25 + 1.25 * np.log(40.0) / np.log(2.0))
    assert levels["flat"] == pytest.approx(null_level(8, 0.05))  # no exceedance: the normal level


def test_tail_level_is_never_laxer_than_normal_and_rises_with_a_heavy_tail():
    rng = np.random.default_rng(0)
    n = 4000
    z = pd.DataFrame({"normal": rng.normal(size=n), "heavy": rng.standard_t(2, size=n)})
    levels = tail_levels(z, 0.05)
    assert levels["normal"] >= null_level(n, 0.05)
    assert levels["heavy"] > levels["normal"] + 1.0
    # a heavy-tailed family whose clean rows pass the normal level no longer lifts them
    lifted = {null: int((label_backbone(z.assign(label=0.0), 0.05, null=null) > 0).sum()) for null in ("normal", "tail")}
    assert lifted["normal"] > 10 and lifted["tail"] < lifted["normal"]


def test_on_pure_label_noise_the_backbone_queue_is_the_label_family_order():
    """Other families below their null level change nothing: the queue equals the label family's alone."""
    rng = np.random.default_rng(3)
    n = 300
    frame = pd.DataFrame({"id": [f"r{i:03d}" for i in range(n)], "label": np.arange(n) % 3,
                          "loss_score": rng.gamma(1.0, size=n), "margin_score": rng.normal(size=n),
                          "outlier_score": rng.uniform(size=n), "input_outlier_score": rng.uniform(size=n)})
    both = fused_values(frame, ["loss_score", "margin_score", "outlier_score", "input_outlier_score"])
    alone = fused_values(frame, ["loss_score", "margin_score"])
    np.testing.assert_allclose(both, alone)


def test_agreement_weights_by_hand():
    # a and b identical, c with Spearman 0 to both (ranks 1..4 vs 2,4,1,3: sum d^2 = 10 = n(n^2-1)/6):
    # eigenvalues 2, 1, 0; v = (1, 1, 0)/sqrt(2) -> mean-1 loadings (1.5, 1.5, 0); share (2 - 1)/(3 - 1) = 0.5
    members = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, 2, 3, 4], "c": [2.0, 4, 1, 3]})
    np.testing.assert_allclose(agreement_weights(members), [1.25, 1.25, 0.5])
    np.testing.assert_allclose(agreement_weights(members[["a", "b", "a"]].set_axis(["x", "y", "z"], axis=1)), [1, 1, 1])
    np.testing.assert_allclose(agreement_weights(members[["a", "c"]]), [1, 1])  # two members: equal


def test_agreement_weighting_trusts_members_that_follow_the_consensus():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=500)
    members = pd.DataFrame({f"m{i}": truth + rng.normal(scale=0.5, size=500) for i in range(4)})
    members["noise"] = rng.normal(size=500)
    weights = agreement_weights(members)
    assert weights["noise"] < 0.5 < weights[["m0", "m1", "m2", "m3"]].min()
    assert weights.mean() == pytest.approx(1.0)


def test_normal_scores_by_hand():
    values = pd.DataFrame({"s": [10.0, 20.0, 30.0, 40.0, 5.0, 5.0, 5.0, 7.0]})
    scores = normal_scores(values, np.array([0, 0, 0, 0, 1, 1, 1, 1]))["s"].to_numpy()
    np.testing.assert_allclose(scores[:4], [-1.1503, -0.3186, 0.3186, 1.1503], atol=1e-4)  # Phi^-1(1/8, 3/8, 5/8, 7/8)
    np.testing.assert_allclose(scores[4:7], 0.0)  # a tied majority is its class median: 0 (sparse)
    assert scores[7] > 0


def test_fusion_options_are_validated():
    with pytest.raises(ValueError, match="weighting"):
        fuse_scores(planted(), ["loss_score"], weighting="vote")
    with pytest.raises(ValueError, match="alpha"):
        fuse_scores(planted(), ["loss_score"], alpha=0.0)
    with pytest.raises(ValueError, match="null"):
        fuse_scores(planted(), ["loss_score"], null="gumbel")


def test_family_values_are_what_the_max_rule_takes_the_max_of():
    frame = hand_made(90).assign(split=["train", "train", "test"] * 30)
    columns = [c for c in frame.columns if c.endswith("_score")]
    family = family_values(frame, columns, method="family_z_max")
    assert set(family.columns) == {"label", "atypical", "compression"}
    np.testing.assert_allclose(family.max(axis=1), fused_values(frame, columns, method="family_z_max"))


def test_the_shipped_default_is_the_recipe_the_suite_selected():
    """exemplar.scoring.fusion.DEFAULT is the candidate benchmarks/results/quality.json chose on all scenarios,
    or, where a confirmation on scenarios the suite had not read was run on that very pick, the one it kept."""
    import importlib.util
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    spec = importlib.util.spec_from_file_location("bench_quality", root / "benchmarks" / "bench_quality.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    selection = json.loads((root / "benchmarks" / "results" / "quality.json").read_text())["selection"]
    chosen = selection["chosen_on_all"]
    if "confirmation" in selection:
        assert selection["confirmation"]["suite_pick"] == chosen  # a confirmation of this very pick
        chosen = selection["confirmation"]["kept"]
    from exemplar.scoring.fusion import DEFAULT

    for key, value in bench.candidates()[chosen].items():
        assert getattr(DEFAULT, key) == value, (key, getattr(DEFAULT, key), value)


def test_undisputed_centring_takes_each_class_median_over_its_undisputed_rows_only():
    """Hand-derived: class 0 holds values 1, 2, 9, 10, 11 where 9-11 are flagged (a class filled by flips);
    its class median is 9, its undisputed median 1.5. Class 1 (4, 5, 6) has no flagged row: median 5 either
    way. A class whose rows are all flagged falls back to its own median."""
    values = pd.DataFrame({"loss_score": [1.0, 2.0, 9.0, 10.0, 11.0, 4.0, 5.0, 6.0, 7.0, 8.0]})
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2])
    flagged = np.array([False, False, True, True, True, False, False, False, True, True])
    centred = np.array([-0.5, 0.5, 7.5, 8.5, 9.5, -1.0, 0.0, 1.0, -0.5, 0.5])
    scale = np.median(np.abs(centred - np.median(centred))) * 1.4826
    expected = (centred - np.median(centred)) / scale
    np.testing.assert_allclose(class_robust_z(values, labels, reference=~flagged)["loss_score"], expected)
    plain = class_robust_z(values, labels)["loss_score"].to_numpy()
    assert plain[2:5].max() < expected[2:5].min()  # the class median (9) centres the flipped-in rows away


def test_undisputed_centre_reads_is_label_issue_and_leaves_other_recipes_alone():
    frame = planted()
    frame["label"] = np.where(np.arange(200) < 40, 0, 1)
    frame["is_label_issue"] = np.arange(200) < 30  # most of class 0 is flagged
    columns = ["loss_score", "margin_score", "input_outlier_score"]
    frame.loc[:29, "loss_score"] += 5.0  # ... and its flagged rows carry the label evidence
    recipe = {"method": "label_backbone", "by_class": True, "weighting": "mean", "spread": "mad", "null": "normal"}  # the sum form
    plain, undisputed = fused_values(frame, columns, **recipe), fused_values(frame, columns, **recipe, centre="undisputed")
    assert np.median(undisputed[:30]) > np.median(plain[:30]) + 1.0
    without_flags = frame.drop(columns="is_label_issue")
    np.testing.assert_array_equal(fused_values(without_flags, columns, **recipe, centre="undisputed"), plain)
    with pytest.raises(ValueError, match="centre"):
        fused_values(frame, columns, centre="median")


def test_source_balanced_family_mean_by_hand():
    # network: loss, margin; crossfit: oos_confidence; data: is_label_conflict
    z = pd.DataFrame({"loss_score": [1.0, 2.0, np.nan], "margin_score": [3.0, 2.0, np.nan],
                      "oos_confidence_score": [0.0, 5.0, 1.0], "is_label_conflict": [0.0, 0.0, 1.0]})
    # row 0: (mean(1, 3) + 0 + 0) / 3; row 1: (2 + 5 + 0) / 3; row 2: no network value -> (1 + 1) / 2
    np.testing.assert_allclose(family_evidence(z, balance="sources")["label"], [2.0 / 3.0, 7.0 / 3.0, 1.0])
    np.testing.assert_allclose(family_evidence(z)["label"], [1.0, 2.25, 1.0])  # members: one mean over all four


def test_source_balance_lets_one_model_count_once_however_many_views_of_it():
    # six network views agree on row 0, the out-of-fold learner alone on row 1: one mean over members
    # lets the six outvote it; balanced by source, each model counts once and the rows tie
    network = {f"{name}_score": [2.0, 0.0] for name in ("loss", "margin", "el2n", "grand", "forgetting", "low_confidence")}
    z = pd.DataFrame({**network, "oos_confidence_score": [0.0, 2.0]})
    members = family_evidence(z)["label"].to_numpy()
    balanced = family_evidence(z, balance="sources")["label"].to_numpy()
    assert members[0] > members[1]
    assert balanced[0] == pytest.approx(balanced[1])


def test_source_balance_weights_within_a_source_and_leaves_single_source_families_alone():
    z = pd.DataFrame({"loss_score": [4.0, 0.0], "margin_score": [0.0, 4.0], "oos_confidence_score": [1.0, 1.0],
                      "outlier_score": [3.0, 1.0], "input_outlier_score": [1.0, 5.0], "cie_score": [0.0, 7.0]})
    weights = pd.Series({"loss_score": 3.0, "margin_score": 1.0})
    label = source_balanced_mean(z[["loss_score", "margin_score", "oos_confidence_score"]],
                                 pd.concat([weights, pd.Series({"oos_confidence_score": 1.0})]), ["network", "network", "crossfit"])
    np.testing.assert_allclose(label, [(3.0 + 1.0) / 2.0, (1.0 + 1.0) / 2.0])  # network: (3*4 + 0) / 4 = 3 and (0 + 4) / 4 = 1
    both = family_evidence(z, balance="sources")
    plain = family_evidence(z)
    # atypical: one network and one data member; compression: one member -> the same either way
    pd.testing.assert_series_equal(both["atypical"], plain["atypical"])
    pd.testing.assert_series_equal(both["compression"], plain["compression"])


def test_stacking_weight_by_hand_and_against_a_grid():
    assert held_out_stacking_weight(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0  # the first explains every row better
    assert held_out_stacking_weight(np.array([0.1, 0.2]), np.array([0.9, 0.8])) == 0.0
    # symmetric: each model explains one row -> the even mixture
    assert held_out_stacking_weight(np.array([0.8, 0.2]), np.array([0.2, 0.8])) == pytest.approx(0.5)
    assert held_out_stacking_weight(np.array([np.nan]), np.array([0.5])) == 0.5  # no row with both
    rng = np.random.default_rng(3)
    first, second = rng.beta(2.0, 1.0, size=300), rng.beta(1.5, 1.0, size=300)
    grid = np.linspace(0.0, 1.0, 100_001)
    likelihood = np.log(grid[:, None] * first + (1.0 - grid[:, None]) * second).sum(axis=1)
    assert held_out_stacking_weight(first, second) == pytest.approx(grid[np.argmax(likelihood)], abs=2e-5)


def test_source_weights_split_the_models_share_and_equal_sources_at_two_thirds():
    sources = ["network", "network", "crossfit", "population", "data"]
    assert source_weights(sources, {"network": 2.0 / 3.0, "crossfit": 1.0 / 3.0}) == pytest.approx(
        {"network": 1.0, "crossfit": 1.0, "population": 1.0, "data": 1.0})
    # the learner explains the labels alone: the network's two sources get nothing, the learner all three shares
    assert source_weights(sources, {"network": 0.0, "crossfit": 1.0}) == pytest.approx(
        {"network": 0.0, "crossfit": 3.0, "population": 0.0, "data": 1.0})
    # one model only: nothing to split
    assert source_weights(["network", "data"], {"network": 0.1, "crossfit": 0.9}) == {"network": 1.0, "data": 1.0}


def test_source_weights_of_zero_leave_a_row_with_only_those_sources_its_plain_mean():
    z = pd.DataFrame({"loss_score": [1.0, 3.0], "oos_confidence_score": [2.0, np.nan]})
    label = source_balanced_mean(z, pd.Series(1.0, index=z.columns), ["network", "crossfit"], {"network": 0.0, "crossfit": 2.0})
    np.testing.assert_allclose(label, [2.0, 3.0])  # row 1 has only the network's view: not NaN


def test_skill_balance_follows_the_model_that_explains_the_labels():
    # the learner's held-out p(label) explains the given labels and finds the flips; the network's views are noise
    rng = np.random.default_rng(5)
    n, flipped = 400, np.arange(20)
    learner = np.clip(rng.normal(0.1, 0.05, n), 0.01, 0.99)
    learner[flipped] = 0.5  # 1 - p(label): a flip gets p 0.5 against the clean rows' 0.9
    frame = pd.DataFrame({"id": [f"r{i:03d}" for i in range(n)], "oos_confidence_score": learner,
                          "population_confidence_score": rng.uniform(0.3, 0.9, n),
                          "loss_score": rng.lognormal(size=n), "margin_score": rng.lognormal(size=n)})
    columns = ["loss_score", "margin_score", "oos_confidence_score", "population_confidence_score"]
    positive = np.isin(np.arange(n), flipped)
    top = {balance: positive[np.argsort(-fused_values(frame, columns, balance=balance, label="members"))[:20]].sum()
           for balance in ("sources", "skill")}
    assert top["skill"] == 20 and top["sources"] < 20
    # without both held-out columns "skill" is "sources"
    np.testing.assert_array_equal(fused_values(frame, columns[:3], balance="skill", label="members"),
                                  fused_values(frame, columns[:3], balance="sources", label="members"))


def test_unknown_balance_is_refused_naming_the_key():
    with pytest.raises(ValueError, match="balance"):
        fused_values(planted(), ["loss_score", "margin_score"], balance="models")


def test_every_declared_signal_reads_a_known_source_and_the_out_of_fold_ones_read_crossfit():
    from exemplar.scoring.registry import NEEDS, SIGNALS, SOURCES

    assert {signal.source for signal in SIGNALS.values()} <= set(SOURCES)
    crossfit = {name for name, need in NEEDS.items() if need == "crossfit"}
    assert crossfit == {name for name, signal in SIGNALS.items() if signal.source == "crossfit"}


def test_label_ranks_scales_the_label_family_by_rank_and_every_other_column_by_robust_z():
    from exemplar.scoring.fusion import FusionConfig, _scaled
    table = pd.DataFrame({"loss_score": [1.0, 2.0, 3.0, 100.0], "oos_confidence_score": [0.1, 0.2, 0.3, 0.4],
                          "outlier_score": [1.0, 2.0, 3.0, 100.0]})
    scaled = _scaled(table, None, FusionConfig(normalise="label_ranks", spread="upper_mad"))
    # ranks 1..4 -> Phi^-1(1/8, 3/8, 5/8, 7/8) minus their median 0: the two label members become the same column
    np.testing.assert_allclose(scaled["loss_score"], [-1.1503, -0.3186, 0.3186, 1.1503], atol=1e-4)
    np.testing.assert_allclose(scaled["oos_confidence_score"], scaled["loss_score"])
    np.testing.assert_allclose(scaled["outlier_score"], robust_z(table[["outlier_score"]], "upper_mad")["outlier_score"])


def test_label_ranks_keep_one_heavy_tailed_member_from_deciding_the_label_family():
    # row 0: one member's value is 1,000 times its spread, the two bounded members are at their median;
    # row 1: first on both bounded members, at the median of the heavy-tailed one
    rng = np.random.default_rng(1)
    z = pd.DataFrame({"self_influence_score": rng.normal(size=40), "oos_confidence_score": rng.uniform(0.2, 0.8, 40),
                      "low_confidence_score": rng.uniform(0.2, 0.8, 40)})
    z.loc[0, ["self_influence_score", "oos_confidence_score", "low_confidence_score"]] = [1000.0, 0.5, 0.5]
    z.loc[1, ["self_influence_score", "oos_confidence_score", "low_confidence_score"]] = [0.0, 1.0, 1.0]
    z["id"] = [f"r{i:02d}" for i in range(40)]
    columns = ["self_influence_score", "oos_confidence_score", "low_confidence_score"]
    by_z = fused_values(z, columns, weighting="mean", normalise="robust_z")
    by_rank = fused_values(z, columns, weighting="mean", normalise="label_ranks")
    assert np.argmax(by_z) == 0
    assert np.argmax(by_rank) == 1


def _recipe_variants() -> list[dict]:
    """Every method with every setting changed on its own, and the class-centred ones: pairs of recipes
    that differ in one field only, so a shared step keyed without that field gives one of them wrong values."""
    single = [{}, {"by_class": True}, {"by_class": True, "centre": "undisputed"}, {"exclude": ("el2n_score",)},
              {"any_of": ("atypical",)}, {"weighting": "agreement"}, {"normalise": "normal_scores"},
              {"normalise": "label_ranks"}, {"alpha": 0.01}, {"spread": "upper_mad"}, {"null": "normal"}, {"trim": True},
              {"balance": "members"}, {"balance": "members", "weighting": "agreement", "spread": "upper_mad"}, {"label": "ensemble"},
              {"label": "ensemble", "conflict": "copies"}, {"label": "network_and_ensemble"},
              {"label": "network_and_ensemble", "conflict": "copies"},
              {"exclude": ("outlier_score",)}]
    # on the label family of every member (the default's, one held-out member, leaves the member settings idle), with the
    # duplicates' flag (the default's copies would make each conflict pair below one recipe), and with both atypical
    # distances (the default's one member leaves any_of idle)
    return [{"method": method, "label": "members", "exclude": (), "conflict": "flag", **change} for method in FUSION_METHODS for change in single]


def test_fused_values_for_many_recipes_equal_one_call_per_recipe():
    """The benchmark's shared-step evaluation against the per-recipe reference, on a table with both splits,
    two classes, disputed rows, a label conflict and every declared signal (heavy-tailed, some NaN)."""
    frame = hand_made(160, seed=3)
    rng = np.random.default_rng(4)
    for column in ("loss_score", "outlier_score", "cie_score"):
        frame[column] = rng.gamma(0.7, size=len(frame))
    frame.loc[rng.choice(len(frame), 12, replace=False), "oos_margin_score"] = np.nan
    frame.loc[[1, 2, 3, 4], "outlier_score"] += [9.0, 15.0, 25.0, 40.0]  # atypical rows, in one member only
    frame.loc[[6, 7], ["loss_score", "cie_score"]] += 6.0
    frame["split"] = np.where(np.arange(len(frame)) % 5 == 0, "test", "train")
    frame["is_label_issue"] = rng.random(len(frame)) < 0.2
    frame["is_label_conflict"] = rng.random(len(frame)) < 0.05
    frame["duplicate_of"] = ""
    frame.loc[[10, 11, 12], "duplicate_of"] = frame.loc[9, "id"]  # one dedup group (conflict="copies")
    columns = [c for c in frame.columns if c.endswith("_score")]
    recipes = {str(i): recipe for i, recipe in enumerate(_recipe_variants())}
    together = fused_values_for_recipes(frame, columns, recipes)
    assert set(together) == set(recipes)
    for name, recipe in recipes.items():
        np.testing.assert_array_equal(together[name], fused_values(frame, columns, **recipe), err_msg=str(recipe))
    # the variants really differ where the family z is used, so a wrongly shared step would show
    for method in ("label_backbone", "label_backbone_product", "family_z_max", "family_z_mean"):
        outputs = [together[name].tobytes() for name, recipe in recipes.items() if recipe["method"] == method]
        assert len(set(outputs)) >= len(outputs) - (1 if method.startswith("label_backbone") else 3), method  # max, mean: no alpha, null


# ------------------------------------------------------------- the held-out ensemble as the label evidence

def test_ensemble_confidence_is_cleanlab_self_confidence_on_the_averaged_held_out_probabilities():
    """Hand-made probabilities of two held-out models: the row mean of their 1 - p(label) columns is exactly
    1 - cleanlab's self-confidence on the mean probabilities; a row with one of them takes that one."""
    from cleanlab.rank import get_label_quality_scores

    from exemplar.scoring.fusion import ENSEMBLE_COLUMN, with_ensemble_confidence

    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 2, 1, 0, 2])
    learner, population = (rng.dirichlet(np.ones(3), size=6) for _ in range(2))
    rows = np.arange(6)
    frame = pd.DataFrame({"id": [f"r{i}" for i in rows], "oos_confidence_score": 1 - learner[rows, labels],
                          "population_confidence_score": 1 - population[rows, labels]})
    quality = get_label_quality_scores(labels, (learner + population) / 2, method="self_confidence")
    np.testing.assert_allclose(with_ensemble_confidence(frame)[ENSEMBLE_COLUMN], 1 - quality, rtol=1e-12)
    frame.loc[2, "population_confidence_score"] = np.nan
    frame.loc[3, ["oos_confidence_score", "population_confidence_score"]] = np.nan
    out = with_ensemble_confidence(frame)
    assert out.loc[2, ENSEMBLE_COLUMN] == frame.loc[2, "oos_confidence_score"] and np.isnan(out.loc[3, ENSEMBLE_COLUMN])
    assert ENSEMBLE_COLUMN not in frame.columns  # a copy
    alone = frame.drop(columns=["population_confidence_score"])
    np.testing.assert_array_equal(with_ensemble_confidence(alone)[ENSEMBLE_COLUMN], alone["oos_confidence_score"])
    bare = frame.drop(columns=["oos_confidence_score", "population_confidence_score"])
    assert with_ensemble_confidence(bare) is bare


def test_the_members_label_family_is_every_member_and_the_ensemble_recipe_reads_the_ensemble_alone():
    """With ``label="members"`` (the default of rounds 15-20) every in-sample and held-out label member moves the
    queue and the derived ensemble column does not (it restates two members); with ``label="ensemble"`` (rounds
    13-14) the ensemble alone is the label evidence and the in-sample members do not move the queue; with
    ``label="network_and_ensemble"`` both the in-sample members and the ensemble do. Without held-out
    probabilities (the pruning proxy) the members are the label evidence whatever the setting. With the flag as the
    duplicates' evidence (``conflict="copies"``, the twenty-first round's default, recomputes the ensemble column from the
    held-out confidences: its own tests below)."""
    from functools import partial

    from exemplar.scoring.fusion import ENSEMBLE_COLUMN, fused_columns, with_ensemble_confidence

    fuse_scores = partial(globals()["fuse_scores"], conflict="flag")

    frame = with_ensemble_confidence(hand_made().drop(columns=[ENSEMBLE_COLUMN]))
    columns = [c for c in frame.columns if c.endswith("_score")]
    assert [c for c in fused_columns(columns, label="ensemble") if SIGNALS[c.removesuffix("_score")].family == "label"] == [ENSEMBLE_COLUMN]
    assert ENSEMBLE_COLUMN not in fused_columns(columns, label="members")
    moved = frame.assign(loss_score=frame["loss_score"].where(frame.index != 17, 50.0))
    for label in ("members", "network_and_ensemble"):
        assert fuse_scores(moved, columns, label=label).loc[17, "audit_rank"] == 1, label
    np.testing.assert_array_equal(fuse_scores(moved, columns, label="ensemble")["audit_score"],
                                  fuse_scores(frame, columns, label="ensemble")["audit_score"])
    raised = frame.copy()
    raised.loc[17, ENSEMBLE_COLUMN] = 50.0
    np.testing.assert_array_equal(fuse_scores(raised, columns, label="members")["audit_score"],
                                  fuse_scores(frame, columns, label="members")["audit_score"])
    for label in ("ensemble", "network_and_ensemble"):
        assert fuse_scores(raised, columns, label=label).loc[17, "audit_rank"] == 1, label
    in_sample = [c for c in columns if c not in (ENSEMBLE_COLUMN, "oos_confidence_score", "population_confidence_score")]
    proxy_like = moved[["id", "label", *in_sample]]
    for label in ("members", "ensemble", "network_and_ensemble"):
        assert fuse_scores(proxy_like, in_sample, label=label).loc[17, "audit_rank"] == 1, label  # no ensemble: the members decide


# ------------------------------------------------------------- the copies as observations (conflict="copies")

def _copies_by_loop(frame: pd.DataFrame) -> np.ndarray:
    """Reference for ensemble_with_copies: row by row, the models' p(label) and every other row of the same dedup
    group (the kept row and the rows whose duplicate_of names it) as one observation each."""
    group = [d if d else i for i, d in zip(frame["id"], frame["duplicate_of"])]
    out = np.full(len(frame), np.nan)
    for r in range(len(frame)):
        p = [1 - frame.loc[r, c] for c in ("oos_confidence_score", "population_confidence_score") if not np.isnan(frame.loc[r, c])]
        if not p:
            continue
        others = [s for s in range(len(frame)) if s != r and group[s] == group[r]]
        same = sum(frame.loc[s, "label"] == frame.loc[r, "label"] for s in others)
        out[r] = 1 - (sum(p) + same) / (len(p) + len(others))
    return out


def test_copies_count_as_observations_of_the_label_by_hand_and_against_a_loop():
    """Row a (label 0; the models give p(0) 0.9 and 0.8) has two copies labelled 1: p = (0.9 + 0.8 + 0) / 4, so
    1 - p = 0.575. Copy b (label 1; p(1) 0.4 and 0.3) has one copy labelled 1 of two: 1 - (0.7 + 1) / 4 = 0.575.
    Row d has no copies: the plain ensemble. Row e has one model: its copy f agrees, 1 - (0.6 + 1) / 2 = 0.2."""
    from exemplar.scoring.fusion import ensemble_with_copies

    frame = pd.DataFrame({"id": list("abcdef"), "duplicate_of": ["", "a", "a", "", "", "e"], "label": [0, 1, 1, 2, 1, 1],
                          "oos_confidence_score": [0.1, 0.6, 0.5, 0.3, 0.4, 0.2],
                          "population_confidence_score": [0.2, 0.7, np.nan, 0.5, np.nan, 0.1]})
    got = ensemble_with_copies(frame)
    np.testing.assert_allclose(got[[0, 1, 3, 4]], [0.575, 0.575, 0.4, 0.2])
    np.testing.assert_allclose(got[2], 1 - (0.5 + 1) / 3)  # one model, two copies (one agrees)
    np.testing.assert_allclose(got, _copies_by_loop(frame))
    rng = np.random.default_rng(7)
    n = 60
    ids = [f"r{i:02d}" for i in range(n)]
    kept = rng.choice(n, 12, replace=False)
    random = pd.DataFrame({"id": ids, "label": rng.integers(0, 3, n),
                           "duplicate_of": [ids[rng.choice(kept)] if i not in kept and rng.random() < 0.4 else "" for i in range(n)],
                           "oos_confidence_score": rng.random(n), "population_confidence_score": rng.random(n)})
    random.loc[rng.choice(n, 8, replace=False), "population_confidence_score"] = np.nan
    random.loc[[0, 1], ["oos_confidence_score", "population_confidence_score"]] = np.nan  # no model: NaN
    np.testing.assert_allclose(ensemble_with_copies(random), _copies_by_loop(random), equal_nan=True)
    bare = random.drop(columns=["duplicate_of"])  # no dedup column: the plain ensemble
    np.testing.assert_allclose(ensemble_with_copies(bare), random[["oos_confidence_score", "population_confidence_score"]].mean(axis=1))


def test_copies_lift_the_row_its_copies_outvote_and_add_no_flag_column():
    """A group of four identical inputs labelled a, a, a, b on which the models are unsure (p(label) 0.5 each): the
    outvoted b row rises to the top of the queue, the a rows sink below where they stand without duplicates; no
    ``is_label_conflict`` column enters (the flag would lift all four alike). With label=members it is the flag."""
    from exemplar.scoring.fusion import CONFLICT_COLUMN, ENSEMBLE_COLUMN, _inputs, with_ensemble_confidence

    frame = hand_made(100)
    frame[["oos_confidence_score", "population_confidence_score"]] = np.random.default_rng(1).uniform(0.0, 0.3, (100, 2))
    group = [30, 31, 32, 33]
    frame.loc[group, ["oos_confidence_score", "population_confidence_score"]] = 0.5
    frame["label"] = 0
    frame.loc[33, "label"] = 1
    frame = with_ensemble_confidence(frame.drop(columns=[ENSEMBLE_COLUMN]))
    frame["duplicate_of"] = ""
    frame.loc[[31, 32, 33], "duplicate_of"] = frame.loc[30, "id"]
    frame["is_label_conflict"] = frame.index.isin(group)
    columns = [c for c in frame.columns if c.endswith("_score")]
    recipe = {"label": "ensemble", "conflict": "copies"}
    plain = fuse_scores(frame.drop(columns=["duplicate_of", "is_label_conflict"]), columns, **recipe)
    copies = fuse_scores(frame, columns, **recipe)
    assert copies.loc[33, "audit_rank"] == 1 and plain.loc[33, "audit_rank"] > 1
    assert (copies.loc[group[:3], "audit_rank"] > plain.loc[group[:3], "audit_rank"]).all()
    assert CONFLICT_COLUMN not in _inputs(frame, columns, "copies").columns
    assert CONFLICT_COLUMN in _inputs(frame, [c for c in columns if c != ENSEMBLE_COLUMN], "copies").columns  # no ensemble: the flag
    # with every label member fused (no ensemble column) the copies setting reads the flag
    np.testing.assert_array_equal(fuse_scores(frame, columns, label="members", conflict="copies")["audit_score"],
                                  fuse_scores(frame, columns, label="members", conflict="flag")["audit_score"])


# ------------------------------------------------------------- the network beside the ensemble (label="network_and_ensemble")

def test_network_and_ensemble_replaces_the_held_out_views_by_the_ensemble_weighing_as_the_models_it_averages():
    """The label family's members are the network's in-sample views, the ensemble (in place of oos_confidence,
    oos_margin, label_issue and population_confidence) and the duplicates' flag; under balance=sources its evidence
    is (network mean + 2 x ensemble + flag) / 4 of the members' robust z, by hand (with the flag as the duplicates'
    evidence); with one held-out model, / 3."""
    from exemplar.scoring.fusion import ENSEMBLE_COLUMN, family_values, fused_columns, robust_z, with_ensemble_confidence

    frame = with_ensemble_confidence(hand_made(80, seed=5).drop(columns=[ENSEMBLE_COLUMN]))
    frame["is_label_conflict"] = np.arange(80) % 9 == 0
    columns = [c for c in frame.columns if c.endswith("_score")]
    label_members = [c for c in fused_columns(columns, ("outlier_score",), "network_and_ensemble")
                     if SIGNALS[c.removesuffix("_score")].family == "label"]
    held_out_views = {"oos_confidence_score", "oos_margin_score", "label_issue_score", "population_confidence_score"}
    assert ENSEMBLE_COLUMN in label_members and not held_out_views & set(label_members)
    network = [c for c in label_members if SIGNALS[c.removesuffix("_score")].source == "network"]
    assert network and set(label_members) == {*network, ENSEMBLE_COLUMN}
    z = robust_z(frame[[*network, ENSEMBLE_COLUMN, "is_label_conflict"]].astype(float))
    evidence = (z[network].mean(axis=1) + 2 * z[ENSEMBLE_COLUMN] + z["is_label_conflict"]) / 4
    expected = robust_z(evidence.to_frame("label"))["label"]
    got = family_values(frame, columns, label="network_and_ensemble", conflict="flag")["label"]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # with one held-out model (no population) the ensemble is that model alone and weighs as one
    single = with_ensemble_confidence(frame.drop(columns=[ENSEMBLE_COLUMN, "population_confidence_score"]))
    single_columns = [c for c in single.columns if c.endswith("_score")]
    z = robust_z(single[[*network, ENSEMBLE_COLUMN, "is_label_conflict"]].astype(float))
    evidence = (z[network].mean(axis=1) + z[ENSEMBLE_COLUMN] + z["is_label_conflict"]) / 3
    np.testing.assert_allclose(family_values(single, single_columns, label="network_and_ensemble", conflict="flag")["label"],
                               robust_z(evidence.to_frame("label"))["label"], rtol=1e-10)
    # without held-out probabilities (no ensemble) every label member enters, as with label="members"
    bare = frame.drop(columns=[ENSEMBLE_COLUMN, "oos_confidence_score", "population_confidence_score"])
    bare_columns = [c for c in bare.columns if c.endswith("_score")]
    np.testing.assert_array_equal(fuse_scores(bare, bare_columns, label="network_and_ensemble")["audit_score"],
                                  fuse_scores(bare, bare_columns, label="members")["audit_score"])
