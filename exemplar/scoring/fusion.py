"""Fusing many signals into one review order: ``audit_score``, ``audit_rank`` and ``audit_rank_test``.

Training rows and test rows are fused and ranked **separately** (they carry different evidence: test
rows have no training dynamics and their losses are out-of-sample anyway): ``audit_rank`` orders the
training rows (1 = review first; NaN on test rows), ``audit_rank_test`` the test rows (NaN on
training rows). A table without a ``split`` column is one group ranked by ``audit_rank``.

Default recipe (:data:`DEFAULT`, method ``label_backbone_product``; the recipe the leave-one-scenario-out rule picks
on the benchmark suite, confirmed on scenarios nobody had read before it shipped: benchmarks/results/quality.json,
``selection.confirmation``; docs/scoring.md). Since the twenty-third round it is the suite's pick on 102 scenarios,
kept by the confirmation on five unread ones (on 107 the twenty-fourth round's suite picked ``conflict="lift"`` at alpha
0.2, and the confirmation on five more unread ones kept this recipe): the label family is **the network's in-sample views beside the held-out
ensemble** (``label="network_and_ensemble"``: the cross-fitted learner's and the population's held-out probabilities
enter through their average, which weighs as the models it averages, each source counted once) and **the share of each
row's exact copies labelled otherwise** (``conflict="share"``, keep.parquet's ``label_disagreement``: in a group of
copies the outvoted rows rise most, where the 0/1 flag, the default of most earlier rounds, lifts every member alike;
the twenty-first round shipped ``copies``, each exact copy one more observation of the label inside the ensemble,
which lost 0.26 AP on copies planted under two labels), the atypical family **in input space alone** (the network
embedding's ``outlier_score`` left out since the sixteenth round: on rows with every measurement missing, or on the
few rows of a far-away country or firm, the embedding distance was 10-30x its median and lifted them above the wrong
labels), **alpha 0.01** (0.05 in rounds 21-22, 0.2 in rounds 16-20: the other families need more evidence before they
lift a row), the MAD spread. Rounds 16-20 shipped every label member with each source counted once, the duplicates'
0/1 flag and alpha 0.2 (PI in docs/scoring.md).

1. Only signals declared with a direction (+1, or -1 = lower is more suspicious) next to their registration
   (:data:`exemplar.scoring.registry.SIGNALS`) enter, less the recipe's ``exclude`` (by default the embedding
   distance ``outlier_score``, as in the fifteenth round's candidate I2; ``exclude=()`` keeps it, the default of
   rounds 1-15; the candidate ``no_weak_label`` leaves out EL2N, GraNd and forgetting). **The label family** is, by
   default (``label="network_and_ensemble"``), the network's in-sample views (one source), ``ensemble_confidence_score``
   in place of the held-out models' own views (weighing as the models it averages) and the duplicates' evidence;
   with ``label="members"`` (rounds 15-20) it is every label member (the network's in-sample views (loss, margin,
   EL2N, GraNd, TracIn self-influence, forgetting, low confidence, confidently wrong), the cross-fitted learner's (``oos_confidence``, ``oos_margin``, ``label_issue``), the
   network population's held-out confidence and the duplicates' flag); ``label="ensemble"`` (the default of
   the thirteenth and fourteenth rounds) takes ``ensemble_confidence_score`` alone instead: 1 - p(given label)
   under the mean of the cross-fitted learner's and the population's held-out probabilities
   (:func:`with_ensemble_confidence`, derived at assembly). The duplicates' label evidence enters the label
   family as the column ``is_label_conflict``: the 0/1 flag on every member of a group of exact copies whose
   labels disagree (``conflict="flag"``), or with ``conflict="share"`` (the default; the fourteenth round's) keep.parquet's
   ``label_disagreement``, the share of the row's copies labelled otherwise (the flag where that is absent); with ``conflict="copies"`` (the
   twenty-first round's default) and the ensemble fused (``label="network_and_ensemble"`` or ``"ensemble"``)
   the copies are observations of the label inside the
   ensemble's probability (:func:`ensemble_with_copies`) and no flag column enters (on tables whose features do not
   determine the label, temperatures and seasons, the flag is on 13-36% of rows at near base-rate precision); with
   ``label="members"``, or without the ensemble, ``copies`` reads the flag.
   Each column is robust-z-scored over its group: minus its median, divided by 1.4826 MAD (spread ``mad``;
   ``upper_mad``, the default spread of rounds 6-14, takes the larger of that and 1.4826 x the median of the
   positive deviations; the std when it is 0, 1 when both are). NaN stays NaN. The columns are
   **not centred within their class** by default (``by_class=False``): on the suite's real tables a class's
   offset was mostly its noise rate (a small class filled by flips from a large one; classes that differ in
   how often they are mislabelled), and centring it away cost the most of any choice (docs/scoring.md).
   ``by_class`` centres on each class's median (``centre="class"``) or on the median of its rows that
   out-of-fold confident learning does not flag (``centre="undisputed"``), with the spread pooled over all rows.
2. A family's evidence (``label``, ``atypical``, ``compression``, ...) is, with ``balance="sources"`` (the
   default), the mean over the family's declared sources (the network, the cross-fitted learner, the
   population, the data) of each source's equally weighted member mean (:func:`source_balanced_mean`): each
   model counts once, however many views of it there are, so the network's eight in-sample views do not
   outvote the held-out learner's three (under the default's label family the held-out ensemble is one source
   weighing as the models it averages, :func:`ensemble_models`). ``balance="members"`` takes one mean over all members;
   ``weighting="agreement"`` weights them by :func:`agreement_weights` (the consensus eigenvector of their rank
   correlations); the candidate ``trim`` drops each row's largest and smallest member z first
   (:func:`trimmed`); the families in ``any_of`` (none by default; the candidate ``atypical``) take the max of
   their members instead.
3. Each family's evidence is robust-z-scored again over the group (same spread), so families share one
   scale. A **sparse** family (MAD 0: more than half its rows tie, e.g. ``cie_score``) is capped at the
   median over the dense families of their 99th-percentile z.
   With ``conflict="lift"`` (the twenty-fourth round's candidate) the duplicates enter no column: the label family's
   evidence, where positive, is multiplied by 1 + the share of the row's exact copies labelled otherwise
   (:func:`lifted_by_copies`), before this step.
4. ``audit_score`` = sign(b) log(1 + |b|) + log(1 + e), where b is the label family's z and e the summed
   excess of every other family over its null level (the product form: evidence multiplies, so a row
   strong in two families beats one strong in the label family alone). The null level is fitted to each
   family's own upper tail (``null="tail"``, :func:`tail_levels`: an exponential tail on its upper quarter,
   never below the normal Bonferroni level z_(alpha / n); alpha 0.01 (0.05 in rounds 21-22, 0.2 in rounds 16-20), so a family whose clean rows are
   heavy-tailed needs more to lift a row; on data where only labels are wrong the queue is the label evidence.

``atypical_rank`` is a second order, within each split, by the ``atypical`` family's z alone (the max of its
fused members, whatever the recipe's ``any_of``; under the default's ``exclude`` that is the input-space distance
alone, which the sixteenth round's analysis measured on the twenty-two atypical-input scenarios, docs/scoring.md):
the fused queue is led by label evidence and finds fewer of the rows whose labels are right but whose inputs
were mis-entered (docs/scoring.md), so the report offers that order next to the audit order.

Other methods, kept for the benchmark's selection: ``label_backbone`` (the backbone's z plus the other
families' excess), ``family_z_max`` (max over families), ``family_z_mean`` (mean over families),
``family_rank_max`` (percentile ranks instead of z), ``rank_mean`` (mean percentile rank over all fused
columns); column scale ``normal_scores`` (within-class ranks -> normal quantiles); the normal null level;
trimmed family means; within-class centring (the default of rounds 1-5); the mean over sources; the label
family's two models weighted by the stacking weight of their held-out probabilities (``balance="skill"``,
:func:`skill_shares`: the eighteenth round's candidate, which lost on the slips tables; docs/scoring.md); the label
family's columns scaled by their rank (``normalise="label_ranks"``: its members are on incomparable scales, a
probability in [0, 1] next to unbounded losses and influences; it led on the selection scenarios and lost both
confirmations declared for it: docs/scoring.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import norm

from exemplar.pruning.dedup import copy_counts
from exemplar.scoring.fusion_config import (  # noqa: F401  (re-exported: the recipe and its allowed values)
    BALANCES, CENTRES, CONFLICT_EVIDENCE, DEFAULT, FUSION_METHODS, LABEL_EVIDENCE, NORMALISATIONS, NULLS, SPREADS, WEIGHTINGS,
    FusionConfig, fusion_config,
)
from exemplar.scoring.registry import SIGNALS, Signal, declared

TAIL_QUANTILE = 0.75  # null="tail": the threshold above which a family's exceedances are fitted
MAD_TO_STD = 1.4826
SPARSE_CAP_QUANTILE = 0.99
BACKBONE = "label"  # label_backbone: the family every row's score starts from
ENSEMBLE_COLUMN = "ensemble_confidence_score"  # 1 - p(label) under the mean of the held-out probabilities
HELD_OUT_CONFIDENCES = ("oos_confidence_score", "population_confidence_score")  # what the ensemble averages
ENSEMBLED_SOURCES = ("crossfit", "population")  # label="network_and_ensemble": these models' label views enter through the ensemble
CONFLICT_COLUMN = "is_label_conflict"  # keep.parquet; declared as SIGNALS["label_conflict"]
DISAGREEMENT_COLUMN = "label_disagreement"  # keep.parquet: the share of a row's exact duplicates labelled otherwise
MODEL_OF_SOURCE = {"network": "network", "population": "network", "crossfit": "crossfit"}  # balance="skill": a source's model
HELD_OUT_OF_MODEL = {"network": "population_confidence_score", "crossfit": "oos_confidence_score"}  # its 1 - p(label) held out
PROBABILITY_FLOOR = 1e-6  # held_out_stacking_weight: p(label) below this counts as this
DISPUTED_COLUMN = "is_label_issue"  # the out-of-fold confident-learning flag; centre="undisputed" centres without these rows


def fused_columns(columns: list[str], exclude: tuple[str, ...] = (), label: str = DEFAULT.label) -> list[str]:
    """The `columns` that enter the fusion: declared direction != 0, not in `exclude`, and of the label family
    what `label` (:data:`LABEL_EVIDENCE`) takes: with ``ensemble`` and :data:`ENSEMBLE_COLUMN` among the
    columns, the ensemble alone; with ``network_and_ensemble`` and the ensemble among them, the ensemble in place of
    the held-out models' own views (sources :data:`ENSEMBLED_SOURCES`) beside the other label members; otherwise
    (``members``, or no held-out probabilities to average) every label member but the ensemble, which restates two
    of them."""
    chosen = [c for c in columns if declared(c).direction != 0 and c not in exclude]
    if label == "ensemble" and ENSEMBLE_COLUMN in chosen:
        return [c for c in chosen if c == ENSEMBLE_COLUMN or declared(c).family != BACKBONE]
    if label == "network_and_ensemble" and ENSEMBLE_COLUMN in chosen:
        return [c for c in chosen if c == ENSEMBLE_COLUMN or declared(c).family != BACKBONE or declared(c).source not in ENSEMBLED_SOURCES]
    return [c for c in chosen if c != ENSEMBLE_COLUMN]


def with_ensemble_confidence(scores: pd.DataFrame) -> pd.DataFrame:
    """`scores` with :data:`ENSEMBLE_COLUMN`: 1 - p(given label) under the mean of the held-out probability
    sets present (the cross-fitted learner's, ``oos_confidence_score``, and the network population's,
    ``population_confidence_score``; both are 1 - p(label), so their row mean is exactly cleanlab's
    self-confidence on the averaged probabilities). A row with one of them takes that one; `scores` is
    returned unchanged when neither column is present."""
    present = [c for c in HELD_OUT_CONFIDENCES if c in scores.columns]
    if not present:
        return scores
    out = scores.copy()
    out[ENSEMBLE_COLUMN] = scores[present].astype(np.float64).mean(axis=1, skipna=True)
    return out


def ensemble_with_copies(scores: pd.DataFrame) -> np.ndarray:
    """(N,) :data:`ENSEMBLE_COLUMN` with each row's exact copies counted as observations of its label
    (``conflict="copies"``): 1 - (sum of p(given label) over the held-out models present + copies labelled the
    same) / (models present + copies). A row's copies are the other rows of its dedup group (``duplicate_of``
    names the kept row; quarantined copies included); every held-out model and every copy is one observation,
    so a row outvoted by its copies rises and a row whose copies agree sinks, by no tuned weight. Without
    copies (or without ``duplicate_of`` / ``label``) it is the plain ensemble; NaN where no model is present."""
    present = [c for c in HELD_OUT_CONFIDENCES if c in scores.columns]
    p_models = 1.0 - scores[present].astype(np.float64)
    models = p_models.notna().sum(axis=1).to_numpy(dtype=np.float64)
    p_sum = p_models.sum(axis=1, min_count=1).to_numpy(dtype=np.float64)
    copies, same = _copy_counts(scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(models > 0, 1.0 - (p_sum + same) / (models + copies), np.nan)


def _copy_counts(scores: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(N,) each row's number of exact copies (other rows of its dedup group) and (N,) how many of them carry
    its label; zeros without ``duplicate_of`` or ``label``."""
    if "duplicate_of" not in scores.columns or "label" not in scores.columns:
        return np.zeros(len(scores)), np.zeros(len(scores))
    of = scores["duplicate_of"].fillna("").astype(str)
    return copy_counts(of.where(of != "", scores["id"].astype(str)).to_numpy(), scores["label"].to_numpy())


def declarations(columns: list[str]) -> list[Signal]:
    """The declaration (family, direction, source) of each ``<name>_score`` column; ``is_label_conflict``
    is declared as ``SIGNALS["label_conflict"]``."""
    return [SIGNALS["label_conflict"] if c == CONFLICT_COLUMN else declared(c) for c in columns]


def families(columns: list[str]) -> list[str]:
    """The declared family of each ``<name>_score`` column (``is_label_conflict`` -> label)."""
    return [signal.family for signal in declarations(columns)]


def robust_z(values: pd.DataFrame, spread: str = "mad") -> pd.DataFrame:
    """Column-wise (v - median) / scale; a column with MAD 0 (sparse) uses its std (or 1 if that is 0).
    scale: ``mad`` 1.4826 MAD; ``upper_mad`` the larger of that and 1.4826 x the median of the positive
    deviations (the upper half of the "double MAD"). Both equal sigma on a normal column; on a right-skewed
    one (a loss where most rows sit near 0) the MAD collapses to the width of that pile and the tail's z
    runs to the hundreds, while the upper-half MAD measures the side the evidence is on. It still ignores
    the top quarter of rows, so up to a quarter can be problems without inflating it."""
    median = values.median()
    deviation = values - median
    scale = deviation.abs().median() * MAD_TO_STD
    fallback = values.std(ddof=0).where(lambda s: s > 0, 1.0).fillna(1.0)
    if spread == "upper_mad":
        upper = deviation.where(deviation > 0).median() * MAD_TO_STD
        scale = scale.where(~(scale > 0) | ~(upper > scale), upper)
    scale = scale.where(scale > 0, fallback)
    return deviation / scale


def class_robust_z(values: pd.DataFrame, labels: np.ndarray | None, spread: str = "mad",
                   reference: np.ndarray | None = None) -> pd.DataFrame:
    """Robust z of each column centred within each class of `labels`: (s - median of its class), divided by
    the pooled spread (1.4826 MAD of the centred values over all rows; std / 1 fallbacks as in
    :func:`robust_z`). Centring per class removes a class that is hard for every model; pooling the spread
    keeps an easy class (tiny MAD) from inflating its mild deviations. Over all rows when `labels` is None.
    `spread`: the scale of :func:`robust_z`. `reference`: (n,) bool, the rows each class's median is taken
    over (a class, or a column within it, with no value there uses all its rows): the median breaks down when
    half a class is wrong, and a class filled by flips from a larger one then centres its own evidence away."""
    if labels is None:
        return robust_z(values, spread)
    labels = np.asarray(labels)
    medians = values.groupby(labels, sort=False).median()
    if reference is not None:
        reference = np.asarray(reference, dtype=bool)
        medians = values[reference].groupby(labels[reference], sort=False).median().reindex(medians.index).fillna(medians)
    centred = values - medians.reindex(labels).to_numpy()
    return robust_z(centred, spread)


def normal_scores(values: pd.DataFrame, labels: np.ndarray | None) -> pd.DataFrame:
    """Each column's within-class percentile rank mapped to a standard normal quantile,
    Phi^-1((rank - 1/2) / n_class) (over all rows when `labels` is None), minus its class median (so a
    column where most rows tie is 0 there and stays sparse): scale-free, so one heavy-tailed column cannot
    dominate, at the price of the tail's magnitude. NaN stays NaN."""
    groups = np.zeros(len(values), dtype=np.int64) if labels is None else np.asarray(labels)
    rank = values.groupby(groups, sort=False).rank()
    count = values.notna().groupby(groups, sort=False).transform("sum")
    scores = pd.DataFrame(norm.ppf((rank - 0.5) / count), index=values.index, columns=values.columns)
    return scores - scores.groupby(groups, sort=False).transform("median")  # a tied majority -> exactly 0 (sparse)


def agreement_weights(members: pd.DataFrame) -> pd.Series:
    """(C,) weights of a family's members, mean 1, from their Spearman correlation matrix (pairwise-complete
    rows). Its leading eigenvector v (sign: positive sum; negative entries set to 0; mean 1): for members
    that are conditionally independent given the truth, the off-diagonal covariance is rank one with
    loadings proportional to each member's balanced accuracy (the spectral meta-learner of Parisi et al.,
    "Ranking and combining multiple predictors without labeled data", PNAS 2014), so a member that
    follows the consensus counts more than one that follows none. The weights shrink towards equal by how
    much of the members' shared variance that consensus explains: w = (1 - s) + s v, with
    s = (lambda_1 - 1) / (C - 1) clipped to [0, 1] (0: uncorrelated members, whose eigenvector is noise).
    Equal weights below three members (two cannot tell which of them is right)."""
    count = members.shape[1]
    if count < 3:
        return pd.Series(1.0, index=members.columns)
    corr = members.rank().corr(min_periods=3).fillna(0.0).to_numpy(copy=True)
    np.fill_diagonal(corr, 1.0)
    values, vectors = np.linalg.eigh(corr)
    lead = vectors[:, -1] * (1.0 if vectors[:, -1].sum() >= 0 else -1.0)
    lead = np.clip(lead, 0.0, None)
    if lead.sum() <= 0:
        return pd.Series(1.0, index=members.columns)
    share = float(np.clip((values[-1] - 1.0) / (count - 1), 0.0, 1.0))
    return pd.Series((1.0 - share) + share * lead * count / lead.sum(), index=members.columns)


def trimmed(members: pd.DataFrame) -> pd.DataFrame:
    """(n, C) `members` with each row's largest and smallest value set to NaN where the row has at least 3
    values (one of each when tied): the mean of what is left is a trimmed mean, so one member whose z runs
    to the hundreds on a row cannot decide the family's evidence alone."""
    values = members.to_numpy(dtype=np.float64, copy=True)
    rows = np.flatnonzero(np.isfinite(values).sum(axis=1) >= 3)
    if len(rows):
        part = values[rows]
        high = np.nanargmax(part, axis=1)
        low = np.nanargmin(np.where(np.arange(part.shape[1]) == high[:, None], np.nan, part), axis=1)
        part[np.arange(len(rows)), high] = np.nan
        part[np.arange(len(rows)), low] = np.nan
        values[rows] = part
    return pd.DataFrame(values, index=members.index, columns=members.columns)


def weighted_mean(members: pd.DataFrame, weights: pd.Series) -> pd.Series:
    """(n,) each row's `weights`-weighted mean of the (n, C) `members` present on it (NaN skipped; NaN where
    none is)."""
    present = members.notna().mul(weights, axis=1).sum(axis=1)
    return members.mul(weights, axis=1).sum(axis=1, min_count=1) / present.where(present > 0)


def source_balanced_mean(members: pd.DataFrame, weights: pd.Series, member_sources: list[str],
                         by_source: dict[str, float] | None = None) -> pd.Series:
    """(n,) the mean over the sources present on each row of that source's `weights`-weighted member mean
    (`member_sources`: (C,) the source of each column): each model counts once, however many views of it
    there are (views of one model share its mistakes, so eight of them should not outvote one of another).
    `by_source`: {source: weight} for a weighted mean over the sources instead (:func:`source_weights`); a row whose
    sources present all weigh 0 takes their plain mean (it still has evidence, only of the model weighed down)."""
    origin = np.asarray(member_sources)
    per_source = {source: weighted_mean(members.loc[:, origin == source], weights[origin == source])
                  for source in dict.fromkeys(member_sources)}
    frame = pd.DataFrame(per_source, index=members.index)
    if by_source is None:
        return frame.mean(axis=1)
    return weighted_mean(frame, pd.Series(by_source).reindex(frame.columns)).fillna(frame.mean(axis=1))


def held_out_stacking_weight(first: np.ndarray, second: np.ndarray) -> float:
    """The linear-stacking weight w in [0, 1] that maximises sum_i log(w p1_i + (1 - w) p2_i): how much the mixture of
    two models' held-out probabilities of the given labels (`first`, `second`: (n,) p(label), rows with either
    missing skipped, floored at PROBABILITY_FLOOR) puts on the first. The log-likelihood is concave in w, so its
    derivative sum_i (p1_i - p2_i) / (w p1_i + (1 - w) p2_i) is decreasing: w is 0 or 1 where it does not change
    sign on [0, 1], else its root (bisection). 0.5 without a row with both."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    both = np.isfinite(first) & np.isfinite(second)
    if not both.any():
        return 0.5
    p1, p2 = np.maximum(first[both], PROBABILITY_FLOOR), np.maximum(second[both], PROBABILITY_FLOOR)

    def slope(w: float) -> float:
        return float(np.sum((p1 - p2) / (w * p1 + (1.0 - w) * p2)))

    if slope(0.0) <= 0.0:
        return 0.0
    if slope(1.0) >= 0.0:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(50):  # 2^-50: far below any difference it could make to a rank
        middle = 0.5 * (low + high)
        low, high = (middle, high) if slope(middle) > 0.0 else (low, middle)
    return 0.5 * (low + high)


def skill_shares(raw: pd.DataFrame) -> dict[str, float] | None:
    """balance="skill": {model: share} of the label family's two models (:data:`MODEL_OF_SOURCE`), the network's
    w and the cross-fitted learner's 1 - w, w = :func:`held_out_stacking_weight` of their held-out p(label) (1 minus
    the :data:`HELD_OUT_OF_MODEL` columns of the (n, C) fused inputs `raw`); None without both columns."""
    if not all(column in raw.columns for column in HELD_OUT_OF_MODEL.values()):
        return None
    weight = held_out_stacking_weight(1.0 - raw[HELD_OUT_OF_MODEL["network"]].to_numpy(dtype=np.float64),
                                      1.0 - raw[HELD_OUT_OF_MODEL["crossfit"]].to_numpy(dtype=np.float64))
    return {"network": weight, "crossfit": 1.0 - weight}


def source_weights(member_sources: list[str], shares: dict[str, float]) -> dict[str, float]:
    """{source: weight} for a family's sources: one each (as ``balance="sources"``), except that the sources of the
    models in `shares` (:data:`MODEL_OF_SOURCE`) split their joint weight, one per such source, by model share,
    each model's part equally among its sources. When only one model has sources here, the weights stay one each."""
    sources = list(dict.fromkeys(member_sources))
    by_model: dict[str, list[str]] = {}
    for source in sources:
        if MODEL_OF_SOURCE.get(source) in shares:
            by_model.setdefault(MODEL_OF_SOURCE[source], []).append(source)
    weights = {source: 1.0 for source in sources}
    if len(by_model) < 2:
        return weights
    joint = sum(len(model_sources) for model_sources in by_model.values())
    for model, model_sources in by_model.items():
        for source in model_sources:
            weights[source] = joint * shares[model] / len(model_sources)
    return weights


def family_evidence(z: pd.DataFrame, any_of: tuple[str, ...] = (), weighting: str = "mean", trim: bool = False,
                    balance: str = "members", shares: dict[str, float] | None = None,
                    ensemble_weight: float = 1.0) -> pd.DataFrame:
    """(N, F) per family: the mean of its columns (skipping NaN), weighted by :func:`agreement_weights`
    when `weighting` is ``agreement`` (weights from all members), of what :func:`trimmed` leaves when
    `trim`, or their max for the families in `any_of` (members that look in different spaces, where
    standing out in one is enough). `balance` ``sources``: the mean over the family's sources of each
    source's weighted member mean (:func:`source_balanced_mean`) instead of one mean over all members;
    ``skill``: the same, but the label family's sources weighted by :func:`source_weights` with the models'
    `shares` (:func:`skill_shares`; ``sources`` when None). `ensemble_weight`: the weight of the label family's
    ``ensemble`` source among its sources (``label="network_and_ensemble"``: the number of models it averages)."""
    signals = declarations(list(z.columns))
    out = {}
    for family in sorted({signal.family for signal in signals}):
        chosen = [signal.family == family for signal in signals]
        members = z.loc[:, chosen]
        if family in any_of:
            out[family] = members.max(axis=1)
            continue
        weights = agreement_weights(members) if weighting == "agreement" else pd.Series(1.0, index=members.columns)
        members = trimmed(members) if trim else members
        if balance in ("sources", "skill"):
            member_sources = [signal.source for signal, c in zip(signals, chosen) if c]
            by_source = (source_weights(member_sources, shares)
                         if balance == "skill" and family == BACKBONE and shares is not None else None)
            if family == BACKBONE and ensemble_weight != 1.0 and "ensemble" in member_sources:
                by_source = {**(by_source or dict.fromkeys(member_sources, 1.0)), "ensemble": ensemble_weight}
            out[family] = source_balanced_mean(members, weights, member_sources, by_source)
        else:
            out[family] = weighted_mean(members, weights)
    return pd.DataFrame(out, index=z.index)


def capped_family_z(evidence: pd.DataFrame, spread: str = "mad") -> pd.DataFrame:
    """Robust z per family (`spread`: the scale of :func:`robust_z`); a sparse family (MAD 0) is capped at
    the median of the dense families' 99th-percentile z (no cap when every family is sparse)."""
    z = robust_z(evidence, spread)
    mad = (evidence - evidence.median()).abs().median()
    sparse = mad.index[~(mad > 0)]
    dense = mad.index[mad > 0]
    if len(sparse) and len(dense):
        cap = float(z[dense].quantile(SPARSE_CAP_QUANTILE).median())
        z[sparse] = z[sparse].clip(upper=cap)
    return z


def null_level(rows: int, alpha: float) -> float:
    """z_(alpha / n): the level that a standard normal (a family's robust z where it carries no signal)
    exceeds on any of `rows` rows with probability at most `alpha` (Bonferroni)."""
    return float(norm.isf(alpha / max(rows, 1)))


def tail_levels(family_z: pd.DataFrame, alpha: float) -> pd.Series:
    """(F,) per family, the level its z exceeds on any of the n rows with probability about `alpha` when
    its upper tail is exponential: u + b ln((1 - q) n / alpha), with u the family's `TAIL_QUANTILE` (q)
    quantile and b = median(z - u | z > u) / ln 2 (a robust fit of the exceedances: up to half of the upper
    quarter may be real problems without raising it). Never below :func:`null_level` (normal tails); a
    family without exceedances keeps that level. A real table's clean rows are often heavier-tailed than
    normal, and the normal level then lifts them."""
    rows = len(family_z)
    normal = null_level(rows, alpha)
    threshold = family_z.quantile(TAIL_QUANTILE)
    excess = family_z - threshold
    scale = excess.where(excess > 0).median() / np.log(2.0)
    fitted = threshold + scale * np.log((1.0 - TAIL_QUANTILE) * max(rows, 1) / alpha)
    return fitted.where(fitted > normal, normal).fillna(normal)


def label_backbone(family_z: pd.DataFrame, alpha: float, product: bool = False, null: str = "normal") -> pd.Series:
    """(n,) the backbone family's z plus, for every other family, how far it rises beyond its null level
    (0 below it): :func:`null_level` when `null` is ``normal``, :func:`tail_levels` when ``tail``. On data
    where only labels are wrong the other families stay under their null level and the queue is the label
    evidence alone; a row that stands out in another family
    beyond what noise reaches is lifted. `product`: combine as sign(b) log(1 + |b|) + log(1 + excess)
    (evidence multiplies: a row strong in both families beats one strong in the backbone alone, whatever
    the backbone's tail). Without a backbone family: the max over families."""
    if BACKBONE not in family_z.columns:
        return family_z.max(axis=1)
    others = family_z.drop(columns=BACKBONE)
    level = tail_levels(others, alpha) if null == "tail" else null_level(len(family_z), alpha)
    excess = (others - level).clip(lower=0.0).sum(axis=1, min_count=1).fillna(0.0)
    backbone = family_z[BACKBONE].fillna(family_z[BACKBONE].min())
    if product:
        return np.sign(backbone) * np.log1p(backbone.abs()) + np.log1p(excess)
    return backbone + excess


def _scaled(table: pd.DataFrame, labels: np.ndarray | None, config: FusionConfig,
            reference: np.ndarray | None = None) -> pd.DataFrame:
    """(n, C) every fused column on one scale within its class (step 1 of the module docstring; ``label_ranks``:
    the label family's columns by :func:`normal_scores`, the others by robust z); `reference`: the (n,)
    undisputed rows the class medians are taken over (``centre="undisputed"``; None: every row)."""
    if config.normalise == "normal_scores":
        return normal_scores(table, labels)
    scaled = class_robust_z(table, labels, config.spread, reference if config.centre == "undisputed" else None)
    if config.normalise == "label_ranks":
        backbone = [c for c, family in zip(table.columns, families(list(table.columns))) if family == BACKBONE]
        scaled[backbone] = normal_scores(table[backbone], labels)
    return scaled


def _families_of(scaled: pd.DataFrame, config: FusionConfig, raw: pd.DataFrame, ensemble_models: int,
                 lift: np.ndarray | None = None) -> pd.DataFrame:
    """(n, F) each family's capped robust z from the scaled columns (steps 2-3 of the module docstring); `raw`:
    the group's (n, C) unscaled inputs, whose held-out confidences give ``balance="skill"`` its model shares;
    `ensemble_models`: how many held-out models the ensemble averages (:func:`ensemble_models`), its weight among the
    label family's sources under ``label="network_and_ensemble"``; `lift`: (n,) the share of each row's copies
    labelled otherwise (``conflict="lift"``, :func:`lifted_by_copies`; None otherwise)."""
    shares = skill_shares(raw) if config.balance == "skill" else None
    ensemble_weight = float(ensemble_models) if config.label == "network_and_ensemble" else 1.0
    evidence = family_evidence(scaled, config.any_of, config.weighting, config.trim, config.balance, shares, ensemble_weight)
    if lift is not None and BACKBONE in evidence.columns:
        evidence[BACKBONE] = lifted_by_copies(evidence[BACKBONE], lift)
    return capped_family_z(evidence, config.spread)


def lifted_by_copies(label_evidence: pd.Series, share: np.ndarray) -> pd.Series:
    """(n,) the label family's evidence with each positive value times 1 + `share` ((n,) in [0, 1]: the share of the
    row's exact copies labelled otherwise, 0 without copies); values at or below 0 and NaN stay as they are. Of a pair
    of copies under two labels both have share 1, but only the one the models already suspect rises (the other's
    evidence is near or below 0), where a duplicates member lifts both alike (``conflict="share"``)."""
    factor = 1.0 + np.asarray(share, dtype=np.float64)
    return label_evidence.where(~(label_evidence > 0), label_evidence * factor)


def _family_z(table: pd.DataFrame, labels: np.ndarray | None, config: FusionConfig,
              reference: np.ndarray | None, ensemble_models: int, lift: np.ndarray | None = None) -> pd.DataFrame:
    """(n, F) each family's capped robust z in one group (steps 1-3 of the module docstring)."""
    return _families_of(_scaled(table, labels, config, reference), config, table, ensemble_models, lift)


def _group_values(table: pd.DataFrame, config: FusionConfig, family_z: pd.DataFrame | None) -> pd.Series:
    """(n,) fused evidence of one group (training or test rows); NaN -> the group's lowest. `family_z`: the
    group's (n, F) family z (:func:`_families_of`); None only for :data:`RANK_METHODS`, which read `table`."""
    if config.method == "rank_mean":
        fused = table.rank(pct=True).mean(axis=1)
    elif config.method == "family_rank_max":
        fused = family_evidence(table.rank(pct=True)).rank(pct=True).max(axis=1)
    else:
        if config.method.startswith("label_backbone"):
            fused = label_backbone(family_z, config.alpha, product=config.method == "label_backbone_product", null=config.null)
        else:
            fused = family_z.max(axis=1) if config.method == "family_z_max" else family_z.mean(axis=1)
    return fused.fillna(fused.min() if fused.notna().any() else 0.0)


def _inputs(scores: pd.DataFrame, columns: list[str], conflict: str = DEFAULT.conflict) -> pd.DataFrame:
    """(N, C) float64 fusion inputs: the fused columns times their declared direction and, when present, the
    duplicates' label evidence as the column ``is_label_conflict`` (declared ``SIGNALS["label_conflict"]``):
    the 0/1 flag (`conflict` ``flag``), or ``label_disagreement`` (``share``; the flag where that is absent); with
    ``copies`` and the ensemble among the columns, the ensemble counts each row's exact copies as observations of its
    label (:func:`ensemble_with_copies`) and no flag column is added (the flag where the ensemble is absent); with
    ``lift`` no column is added (the share multiplies the label family's evidence instead, :func:`copies_lift`)."""
    table = scores[columns].astype(np.float64) * [float(declared(c).direction) for c in columns]
    source = duplicates_evidence(list(scores.columns), columns, conflict)
    if source == COPIES_EVIDENCE:  # the copies are inside the ensemble: no flag column
        table[ENSEMBLE_COLUMN] = ensemble_with_copies(scores) * declared(ENSEMBLE_COLUMN).direction
    elif fuses_conflict_column(source, conflict):
        table[CONFLICT_COLUMN] = scores[source].fillna(0).astype(np.float64) * SIGNALS["label_conflict"].direction
    return table


COPIES_EVIDENCE = "duplicate_of"  # duplicates_evidence: the copies counted inside the ensemble (conflict="copies")


def duplicates_evidence(present: list[str], columns: list[str], conflict: str = DEFAULT.conflict) -> str | None:
    """What the fusion of `columns` (the fused ones, :func:`fused_columns`) reads of the duplicates, given the score
    table's `present` columns and the `conflict` setting: :data:`COPIES_EVIDENCE` (each exact copy one observation
    inside the ensemble: ``copies`` with :data:`ENSEMBLE_COLUMN` fused), the column that enters as
    ``is_label_conflict`` (``label_disagreement`` with ``share`` where present, else the 0/1 flag), the column whose
    share multiplies the label family's evidence (``lift``: the same choice), or None (no duplicates' column, nothing
    fused, or the signal declared 0)."""
    if conflict == "copies" and ENSEMBLE_COLUMN in columns:
        return COPIES_EVIDENCE
    if CONFLICT_COLUMN not in present or not columns or not SIGNALS["label_conflict"].direction:
        return None
    return DISAGREEMENT_COLUMN if conflict in ("share", "lift") and DISAGREEMENT_COLUMN in present else CONFLICT_COLUMN


def fuses_conflict_column(source: str | None, conflict: str) -> bool:
    """Whether the duplicates' evidence `source` (:func:`duplicates_evidence`) enters the fusion as the column
    ``is_label_conflict``: not without one, not with the copies inside the ensemble, not with ``lift`` (a multiplier)."""
    return source not in (None, COPIES_EVIDENCE) and conflict != "lift"


def copies_lift(scores: pd.DataFrame, columns: list[str], conflict: str) -> np.ndarray | None:
    """(N,) the share of each row's exact copies labelled otherwise (:func:`duplicates_evidence`'s column, NaN -> 0,
    in [0, 1]) with ``conflict="lift"``; None for another setting or without a duplicates' column."""
    source = duplicates_evidence(list(scores.columns), columns, conflict) if conflict == "lift" else None
    if source is None:
        return None
    return scores[source].fillna(0).astype(np.float64).clip(0.0, 1.0).to_numpy()


def _config(method: str | None, overrides: dict) -> FusionConfig:
    """The default recipe with `method` and `overrides` applied, validated (one error naming the key)."""
    return fusion_config({**overrides, **({"method": method} if method else {})})


def ensemble_models(scores: pd.DataFrame) -> int:
    """How many held-out models :data:`ENSEMBLE_COLUMN` averages in `scores`: the columns of
    :data:`HELD_OUT_CONFIDENCES` present with a value on some row (2 with the cross-fitted learner and the
    population, 1 when the configuration runs only one of them)."""
    return sum(int(c in scores.columns and scores[c].notna().any()) for c in HELD_OUT_CONFIDENCES)


class _Group(NamedTuple):
    """One split group's fusion inputs (:func:`_split_tables`)."""

    rows: np.ndarray  # (n,) row indices into the score table
    part: pd.DataFrame  # (n, C) the fused columns of those rows
    labels: np.ndarray | None  # (n,) labels; None without ``by_class`` or a ``label`` column
    reference: np.ndarray | None  # (n,) undisputed rows (not ``is_label_issue``); None where the column is absent
    ensemble_models: int  # :func:`ensemble_models` of the whole table
    lift: np.ndarray | None  # (n,) :func:`copies_lift` of those rows (``conflict="lift"``); None otherwise


def _split_tables(scores: pd.DataFrame, columns: list[str], config: FusionConfig):
    """:class:`_Group` per split group (:func:`split_groups`); nothing without a fused column."""
    chosen = fused_columns(columns, tuple(config.exclude), config.label)
    if not chosen:
        return
    table = _inputs(scores, chosen, config.conflict).reset_index(drop=True)
    labels = scores["label"].to_numpy() if config.by_class and "label" in scores.columns else None
    undisputed = ~scores[DISPUTED_COLUMN].fillna(False).to_numpy(dtype=bool) if DISPUTED_COLUMN in scores.columns else None
    models = ensemble_models(scores)
    lift = copies_lift(scores, chosen, config.conflict)
    for rows in split_groups(scores).values():
        yield _Group(rows, table.iloc[rows].reset_index(drop=True), None if labels is None else labels[rows],
                     None if undisputed is None else undisputed[rows], models, None if lift is None else lift[rows])


FINAL_STEP_FIELDS = ("method", "alpha", "null")  # FusionConfig fields read only after the family z (step 4)
FAMILY_STEP_FIELDS = ("any_of", "weighting", "trim", "balance")  # read from the scaled columns to the family z (steps 2-3)


def _shared_step_keys(config: FusionConfig) -> tuple[tuple, tuple]:
    """The settings that determine a recipe's scaled columns (step 1) and its family z (steps 1-3): every
    field but the final step's, so a field added to :class:`FusionConfig` is shared only where it is equal."""
    settings = {key: tuple(value) if isinstance(value, (list, tuple)) else value for key, value in asdict(config).items()}
    family = tuple((key, value) for key, value in settings.items() if key not in FINAL_STEP_FIELDS)
    return tuple(item for item in family if item[0] not in FAMILY_STEP_FIELDS), family


class _SharedSteps:
    """One table's split tables, scaled columns and family z, each computed once per distinct setting that
    determines it (:func:`_shared_step_keys`) and reused by every recipe with that setting."""

    def __init__(self, scores: pd.DataFrame, columns: list[str]):
        self.scores, self.columns = scores, columns
        self.splits: dict[tuple, list] = {}
        self.scaled: dict[tuple, pd.DataFrame] = {}
        self.families: dict[tuple, pd.DataFrame] = {}

    def groups(self, config: FusionConfig) -> list[_Group]:
        """:func:`_split_tables` of `config` (it reads only ``exclude``, ``label``, ``conflict`` and ``by_class``)."""
        key = (tuple(config.exclude), config.label, config.conflict, config.by_class)
        if key not in self.splits:
            self.splits[key] = list(_split_tables(self.scores, self.columns, config))
        return self.splits[key]

    def family_z(self, index: int, group: _Group, config: FusionConfig) -> pd.DataFrame:
        """(n, F) :func:`_family_z` of split group number `index` (`group` as :meth:`groups` gives it)."""
        scaled_key, family_key = _shared_step_keys(config)
        if (index, family_key) not in self.families:
            if (index, scaled_key) not in self.scaled:
                self.scaled[index, scaled_key] = _scaled(group.part, group.labels, config, group.reference)
            self.families[index, family_key] = _families_of(self.scaled[index, scaled_key], config, group.part,
                                                            group.ensemble_models, group.lift)
        return self.families[index, family_key]


RANK_METHODS = ("rank_mean", "family_rank_max")  # methods that do not read the family z


def _recipe_values(steps: _SharedSteps, config: FusionConfig) -> np.ndarray:
    """(N,) one recipe's fused evidence, each split group on its own, from `steps` (its shared work)."""
    values = np.zeros(len(steps.scores), dtype=np.float64)
    for index, group in enumerate(steps.groups(config)):
        family_z = None if config.method in RANK_METHODS else steps.family_z(index, group, config)
        values[group.rows] = _group_values(group.part, config, family_z).to_numpy(dtype=np.float64)
    return values


def fused_values(scores: pd.DataFrame, columns: list[str], method: str | None = None, **overrides) -> np.ndarray:
    """(N,) fused evidence over the fused subset of `columns`, computed separately for each split
    (higher = review sooner): the :data:`DEFAULT` recipe, or `method` and any :class:`FusionConfig`
    field in `overrides` (``by_class``, ``exclude``, ``any_of``, ``weighting``, ``normalise``, ``alpha``, ``spread``, ``null``, ``trim``,
    ``centre``, ``balance``, ``label``, ``conflict``;
    the benchmark's candidates)."""
    return _recipe_values(_SharedSteps(scores, columns), _config(method, overrides))


def fused_values_for_recipes(scores: pd.DataFrame, columns: list[str], recipes: dict[str, dict]) -> dict[str, np.ndarray]:
    """{name: (N,) :func:`fused_values` (`scores`, `columns`, ``**recipe``)} for many recipes (each a dict of
    ``method`` and :class:`FusionConfig` overrides), equal to calling it per recipe. The split tables, the
    scaled columns and the family z are computed once per distinct setting that determines them: the
    benchmark's grid of 1,373 recipes has 231 distinct family-z settings."""
    steps = _SharedSteps(scores, columns)
    return {name: _recipe_values(steps, _config(recipe.get("method"), {k: v for k, v in recipe.items() if k != "method"}))
            for name, recipe in recipes.items()}


def family_values(scores: pd.DataFrame, columns: list[str], **overrides) -> pd.DataFrame:
    """(N, F) each family's z as the fusion sees it (per split group; the :data:`DEFAULT` recipe with
    `overrides`), for the benchmark's per-family figures and for explaining a row."""
    config = _config(None, overrides)
    parts = [_family_z(group.part, group.labels, config, group.reference, group.ensemble_models, group.lift).set_axis(group.rows)
             for group in _split_tables(scores, columns, config)]
    return pd.concat(parts).sort_index() if parts else pd.DataFrame(index=range(len(scores)))


def model_shares(scores: pd.DataFrame, columns: list[str], **overrides) -> dict[str, dict[str, float]]:
    """{split group: {model: share}}: what ``balance="skill"`` gave the label family's two models in each group
    (:func:`skill_shares`), for the report; {} for another balance or without both held-out columns."""
    config = _config(None, overrides)
    if config.balance != "skill":
        return {}
    names = list(split_groups(scores))
    shares = {names[index]: skill_shares(group.part) for index, group in enumerate(_split_tables(scores, columns, config))}
    return {name: value for name, value in shares.items() if value is not None}


def split_groups(scores: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row indices ranked together: ``train`` (every non-test row) and ``test``; all rows without ``split``."""
    if "split" not in scores.columns:
        return {"train": np.arange(len(scores))}
    is_test = (scores["split"] == "test").to_numpy()
    groups = {"train": np.flatnonzero(~is_test), "test": np.flatnonzero(is_test)}
    return {name: rows for name, rows in groups.items() if len(rows)}


def _ranks(values: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """1-based ranks of `rows` by descending value, ties broken by id."""
    order = np.lexsort((ids[rows].astype(str), -values[rows]))
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(1, len(rows) + 1)
    return rank


ATYPICAL = "atypical"  # the family behind the second queue, ``atypical_rank``


def _split_ranks(values: np.ndarray, scores: pd.DataFrame) -> np.ndarray:
    """(N,) float ranks of every row within its own split group (:func:`split_groups`), by descending
    `values` (NaN last, ties by id)."""
    values = np.where(np.isfinite(values), values, -np.inf)
    ids = scores["id"].to_numpy()
    rank = np.full(len(scores), np.nan)
    for rows in split_groups(scores).values():
        rank[rows] = _ranks(values, ids, rows)
    return rank


def fuse_scores(scores: pd.DataFrame, columns: list[str], method: str | None = None, **overrides) -> pd.DataFrame:
    """Add ``audit_score``, ``audit_rank`` (training rows) and ``audit_rank_test`` (test rows) to a copy
    of `scores` (ranks 1 = review first, ties broken by id, NaN outside their group), and, when an
    atypical signal is fused, ``atypical_rank``: every row ranked within its own split by the ``atypical``
    family's z alone (1 = the most atypical input; the max of its members, with the recipe's normalisation
    and spread). The fused queue is led by label evidence (docs/scoring.md: on rows whose labels are right
    but whose inputs were mis-entered it finds few), so atypical inputs get an order of their own. When the
    recipe already takes the atypical family's max, each group's family z is computed once and serves both;
    otherwise the two share the scaled columns."""
    config = _config(method, overrides)
    order_config = replace(config, any_of=tuple(sorted({*config.any_of, ATYPICAL})))
    values = np.zeros(len(scores), dtype=np.float64)
    atypical = np.full(len(scores), np.nan)
    has_atypical = False
    for group in _split_tables(scores, columns, config):
        scaled = _scaled(group.part, group.labels, config, group.reference)
        family_z = _families_of(scaled, config, group.part, group.ensemble_models, group.lift)
        values[group.rows] = _group_values(group.part, config, family_z).to_numpy(dtype=np.float64)
        if ATYPICAL in family_z.columns:
            order_z = (family_z if order_config == config
                       else _families_of(scaled, order_config, group.part, group.ensemble_models, group.lift))
            atypical[group.rows], has_atypical = order_z[ATYPICAL].to_numpy(dtype=np.float64), True
    fused = scores.copy()
    fused["audit_score"] = values
    ids = fused["id"].to_numpy()
    for group, column in (("train", "audit_rank"), ("test", "audit_rank_test")):
        rank = np.full(len(fused), np.nan)  # float so NaN marks the other group (readers call float())
        rows = split_groups(scores).get(group)
        if rows is not None:
            rank[rows] = _ranks(values, ids, rows)
        fused[column] = rank
    if has_atypical:
        fused["atypical_rank"] = _split_ranks(atypical, scores)
    return fused
