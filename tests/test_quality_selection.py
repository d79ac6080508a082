"""The quality suite's selection rules (benchmarks/bench_quality.py) on hand-made per-seed APs: the strict
worst margin, the one-standard-error tolerance (the shipped rule since round 6) and leave-one-scenario-out."""

from __future__ import annotations

import math

import pytest

from tests.test_score_quality import bench_quality


def _runs(candidates: dict[str, list[float]], anchor: list[float]) -> list[dict]:
    """One scenario's runs: {candidate: AP per seed} and the anchor's AP per seed, seeds 0, 1, ..."""
    return [{"seed": seed, "anchors": {"cleanlab_oos_learner": {"average_precision": anchor[seed]}},
             "candidates": {key: {"average_precision": aps[seed], "auroc": 0.5} for key, aps in candidates.items()}}
            for seed in range(len(anchor))]


@pytest.fixture(scope="module")
def bench():
    return bench_quality()


# Scenario "hard": A's worst margin is 0.00, B's -0.01, C's -0.20; A's per-seed margins there are
# (+0.02, -0.02, 0.00): std 0.02, standard error 0.02 / sqrt(3) = 0.01155, so B ties with A and wins on mean AP.
SUITE = {
    "hard": _runs({"A": [0.72, 0.68, 0.70], "B": [0.69, 0.69, 0.69], "C": [0.50, 0.50, 0.50]}, [0.70, 0.70, 0.70]),
    "easy": _runs({"A": [0.80, 0.80, 0.80], "B": [0.95, 0.95, 0.95], "C": [0.99, 0.99, 0.99]}, [0.70, 0.70, 0.70]),
}


def test_margin_standard_error_is_the_paired_seed_standard_error(bench):
    assert bench.margin_standard_error(SUITE["hard"], "A") == pytest.approx(0.02 / math.sqrt(3))
    assert bench.margin_standard_error(SUITE["hard"], "B") == pytest.approx(0.0)
    assert bench.margin_standard_error(SUITE["hard"][:1], "A") == 0.0  # one seed: no tolerance


def test_strict_rule_takes_the_best_worst_margin_and_one_se_the_best_mean_within_tolerance(bench):
    keys = ["A", "B", "C"]
    assert bench.leave_one_scenario_out(SUITE, keys, "worst_margin")["chosen_on_all"] == "A"
    assert bench.leave_one_scenario_out(SUITE, keys, "mean_ap")["chosen_on_all"] == "B"  # mean AP: B 0.82, A 0.75, C 0.745
    chosen = bench.leave_one_scenario_out(SUITE, keys, "one_se")
    assert chosen["chosen_on_all"] == "B"
    assert chosen["tolerance_on_all"]["strict_best"] == "A"
    assert chosen["tolerance_on_all"]["its_worst_scenario"] == "hard"
    assert sorted(chosen["tolerance_on_all"]["tied"]) == ["A", "B"]


def test_one_se_is_the_strict_rule_when_the_seeds_agree(bench):
    steady = {**SUITE, "hard": _runs({"A": [0.70] * 3, "B": [0.69] * 3, "C": [0.50] * 3}, [0.70] * 3)}
    assert bench.leave_one_scenario_out(steady, ["A", "B", "C"], "one_se")["chosen_on_all"] == "A"


def test_held_out_choice_never_sees_the_held_out_scenario(bench):
    held = bench.leave_one_scenario_out(SUITE, ["A", "B", "C"], "one_se")["held_out"]
    # with "hard" held out only "easy" is left, where C is best by every rule; with "easy" held out, A and B
    # tie on "hard" (B's -0.01 is inside A's standard error there) and A has the higher mean AP there
    assert held["hard"]["chosen"] == "C" and held["hard"]["average_precision"] == pytest.approx(0.50)
    assert held["easy"]["chosen"] == "A" and held["easy"]["average_precision"] == pytest.approx(0.80)


def test_every_candidate_sets_every_fusion_field(bench):
    """A candidate must not inherit from the shipped DEFAULT: when the default changed to the tail-fitted
    null level, candidates without ``null`` would silently have become tail candidates."""
    from dataclasses import fields

    from exemplar.scoring.fusion import FusionConfig

    every = {f.name for f in fields(FusionConfig)}
    for key, options in bench.candidates().items():
        assert set(options) == every, (key, every - set(options))


def test_only_candidates_that_keep_compression_and_robust_z_magnitudes_are_eligible(bench):
    """The rank scales (every column, or the label family's) and the grid without the compression family are
    a record: every other candidate is eligible, and the shipped default is one of them."""
    from dataclasses import asdict

    from exemplar.scoring.fusion import DEFAULT

    candidates = bench.candidates()
    for key in candidates:
        parts = dict(part.split("=", 1) for part in key.split("|")[1:])
        recorded = parts["members"] == "no_compression" or parts["scale"] in ("normal_scores", "label_ranks")
        assert bench.shipped(key) is not recorded, key
    default = {**asdict(DEFAULT), "exclude": tuple(DEFAULT.exclude), "any_of": tuple(DEFAULT.any_of)}
    assert any(options == default for key, options in candidates.items() if bench.shipped(key))


def test_a_confirmation_keeps_the_shipped_default_unless_the_fresh_scenarios_choose_the_pick(bench):
    """The suite's pick P against the shipped default D on fresh scenarios, by the same one-SE rule."""
    other = _runs({"D": [0.90] * 3, "P": [0.90] * 3}, [0.60] * 3)
    fresh = {"new": _runs({"D": [0.80, 0.80, 0.80], "P": [0.70, 0.70, 0.70]}, [0.75, 0.75, 0.75]), "other": other}
    kept = bench.confirmation(fresh, "D", "P")
    assert kept["kept"] == "D" and kept["worst_margin"] == {"D": pytest.approx(0.05), "P": pytest.approx(-0.05)}
    assert kept["ap"]["new"] == {"D": pytest.approx(0.80), "P": pytest.approx(0.70), "anchor": pytest.approx(0.75)}
    better = {"new": _runs({"D": [0.70, 0.70, 0.70], "P": [0.80, 0.80, 0.80]}, [0.75, 0.75, 0.75]), "other": other}
    assert bench.confirmation(better, "D", "P")["kept"] == "P"


def test_the_shipped_default_is_named_among_the_candidates(bench):
    from exemplar.scoring.fusion import DEFAULT

    options = bench.candidates()
    fields = list(next(iter(options.values())))
    name = bench.candidate_name({key: getattr(DEFAULT, key) for key in fields}, options)
    assert name == ("label_backbone_product_a0.01|norm=global|members=network_ensemble_input|atypical=mean|weighting=mean"
                    "|scale=robust_z|null=tail|balance=sources|conflict=share")
    other = {key: getattr(DEFAULT, key) for key in fields} | {"alpha": 0.2, "label": "members", "conflict": "flag"}  # rounds 16-20's
    assert bench.candidate_name(other, options) == ("label_backbone_product_a0.2|norm=global|members=all_input|atypical=mean"
                                                    "|weighting=mean|scale=robust_z|null=tail|balance=sources")
    with pytest.raises(StopIteration):
        bench.candidate_name({**other, "method": "no such method"}, options)


def test_the_record_keeps_each_runs_candidate_figures_once_per_name_and_reads_back(bench, tmp_path):
    """quality.json names the candidates once and keeps each run's figures as a list in that order, rounded to
    RECORD_DECIMALS, one run per line; load_report gives the runs back as the selection reads them, and the
    selection on them is the selection on the originals."""
    import json

    runs = {name: [{**run, "candidates": {key: {"average_precision": m["average_precision"] + 1e-7, "auroc": 0.5,
                                                "precision_at_k": 0.25} for key, m in run["candidates"].items()}}
                   for run in body] for name, body in SUITE.items()}
    report = {"command": "analyse", "selection": {"chosen_on_all": "B"}, "runs": runs}
    path = tmp_path / "quality.json"
    path.write_text(bench.report_text(report))
    raw = json.loads(path.read_text())
    assert raw["candidate_names"] == ["A", "B", "C"] and raw["candidate_metric_names"] == list(bench.CANDIDATE_METRICS)
    assert raw["runs"]["hard"][1]["candidate_metrics"] == [[0.68, 0.5, 0.25], [0.69, 0.5, 0.25], [0.5, 0.5, 0.25]]
    assert sum(line.lstrip().startswith('{"seed"') for line in path.read_text().splitlines()) == 6  # one line per run
    back = bench.load_report(path)
    assert back["selection"] == report["selection"] and back["runs"]["easy"][2]["anchors"] == runs["easy"][2]["anchors"]
    for name, body in runs.items():
        for original, restored in zip(body, back["runs"][name]):
            for key, figures in original["candidates"].items():
                assert restored["candidates"][key] == pytest.approx(figures, abs=0.5 * 10 ** -bench.RECORD_DECIMALS)
    assert (bench.leave_one_scenario_out(back["runs"], ["A", "B", "C"], "one_se")["chosen_on_all"]
            == bench.leave_one_scenario_out(runs, ["A", "B", "C"], "one_se")["chosen_on_all"])
    assert bench.report_text(json.loads(path.read_text())) == path.read_text()  # a compact record is written as it is
    assert json.loads(bench.report_text({"runs": {}})) == {"runs": {}}


def test_confirm_names_the_flag_of_an_unknown_candidate(bench, tmp_path):
    """`confirm --candidate` / `--against` take candidate names; a typo is one message naming the flag and the file."""
    results = tmp_path / "quality.json"
    results.write_text('{"selection": {"shipped_default": {}, "chosen_on_all": "x"}, "scenarios": {}}')
    for keyword, flag in (("candidate", "--candidate"), ("against", "--against")):
        with pytest.raises(SystemExit, match=f"{flag}: no candidate named 'no such recipe'.*quality.json"):
            bench.confirm(tmp_path, results, "confirm", **{keyword: "no such recipe"})


def _scored_table(seed: int = 0, rows: int = 120) -> "pd.DataFrame":
    """A saved suite table in miniature: training and test rows, label and atypical members, the compression
    member, the anchor and the pipeline's audit score, 12 planted positives with louder label evidence."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    positive = np.zeros(rows, dtype=bool)
    positive[rng.choice(rows - 20, size=12, replace=False)] = True
    lift = np.where(positive, 2.0, 0.0)
    return pd.DataFrame({
        "id": [f"row-{i:05d}" for i in range(rows)], "split": ["train"] * (rows - 20) + ["test"] * 20,
        "label": rng.integers(0, 3, rows), "is_positive": positive,
        "loss_score": rng.normal(size=rows) + lift, "margin_score": rng.normal(size=rows) + lift,
        "oos_confidence_score": rng.random(rows) * 0.5 + lift / 4, "outlier_score": rng.gamma(2.0, size=rows),
        "input_outlier_score": rng.gamma(2.0, size=rows), "cie_score": (rng.random(rows) < 0.05).astype(float),
        "is_label_conflict": np.zeros(rows, dtype=bool), "audit_score": rng.normal(size=rows),
        "cleanlab_oos_learner": rng.random(rows) + lift / 4,
    })


def test_syntax_digest_ignores_docstrings_comments_and_the_fusion_defaults_only(bench):
    base = 'class FusionConfig:\n    """doc"""\n    alpha: float = 0.05\n\ndef f(x):\n    """doc"""\n    return x + 1\n'
    same = 'class FusionConfig:\n    """other doc"""\n    alpha: float = 0.2  # a new default\n\ndef f(x):\n    return x + 1\n'
    assert bench.syntax_digest(base) == bench.syntax_digest(same)
    assert bench.syntax_digest(base) != bench.syntax_digest(base.replace("x + 1", "x + 2"))
    assert bench.syntax_digest(base) != bench.syntax_digest(base.replace("alpha: float", "beta: float"))


def test_cached_candidate_metrics_equal_fresh_ones_and_only_new_candidates_are_fused(bench, tmp_path, monkeypatch):
    path = tmp_path / "tables" / "mini__s3.parquet"
    path.parent.mkdir()
    _scored_table().to_parquet(path)
    options = bench.candidates()
    first = dict(list(options.items())[:6])
    cache = bench.CandidateCache(tmp_path / "cache")
    name, fresh = bench._evaluate_path(path, first, cache)
    assert (name, fresh["seed"]) == ("mini", 3)
    fused = []
    real = bench.fused_values_for_recipes
    monkeypatch.setattr(bench, "fused_values_for_recipes", lambda t, c, recipes: fused.append(sorted(recipes)) or real(t, c, recipes))
    _, again = bench._evaluate_path(path, first, cache)
    assert again["candidates"] == fresh["candidates"] and fused == [[]]
    grown = dict(list(options.items())[:8])
    _, more = bench._evaluate_path(path, grown, cache)
    assert fused[-1] == sorted(list(grown)[6:])
    assert {k: more["candidates"][k] for k in first} == fresh["candidates"]
    _, uncached = bench._evaluate_path(path, grown)
    assert more["candidates"] == uncached["candidates"]


def test_a_cache_entry_counts_only_under_the_same_settings_and_fingerprint(bench, tmp_path, monkeypatch):
    import json

    path = tmp_path / "mini__s0.parquet"
    _scored_table(seed=1).to_parquet(path)
    key, recipe = next(iter(bench.candidates().items()))
    cache = bench.CandidateCache(tmp_path / "cache")
    bench._evaluate_path(path, {key: recipe}, cache)
    assert key in cache.known(path, {key: recipe})
    assert cache.known(path, {key: {**recipe, "alpha": recipe["alpha"] / 2}}) == {}
    entry = next((tmp_path / "cache").glob("*.json"))
    entry.write_text(json.dumps({**json.loads(entry.read_text()), "fingerprint": "fusion code of another commit"}))
    assert cache.known(path, {key: recipe}) == {}
