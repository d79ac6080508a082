"""The fusion recipe (:class:`FusionConfig`) and its allowed values, without pandas: the command line and
``report.fusion`` (conf/report/default.yaml) validate a recipe before any stage starts. The arithmetic and the
history of each choice are in :mod:`exemplar.scoring.fusion`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from exemplar.errors import ExemplarError

FUSION_METHODS = ("label_backbone", "label_backbone_product", "family_z_max", "family_z_mean", "family_rank_max", "rank_mean")
WEIGHTINGS = ("agreement", "mean")  # how a family combines its members
# how each column is put on one scale (label_ranks: the backbone's columns by rank, the rest robust z)
NORMALISATIONS = ("robust_z", "normal_scores", "label_ranks")
SPREADS = ("mad", "upper_mad")  # robust_z's scale: the MAD, or the larger of it and the upper-half MAD
CENTRES = ("class", "undisputed")  # by_class robust_z: centre on the class's median, or on its undisputed rows' median
BALANCES = ("members", "sources", "skill")  # a family's mean: over its members, over its sources (each model once), or
# (label family only) over its sources with the two models' share split by their held-out stacking weight
LABEL_EVIDENCE = ("ensemble", "members", "network_and_ensemble")  # the label family: the held-out ensemble (when present),
# every member, or the network's in-sample views beside the held-out ensemble (which counts as the models it averages)
NULLS = ("normal", "tail")  # label_backbone's null level: normal Bonferroni, or an exponential tail fitted per family
CONFLICT_EVIDENCE = ("flag", "share", "copies", "lift")  # what the label family reads of duplicates: is_label_conflict, label_disagreement,
# each exact copy as one more observation of the label inside the held-out ensemble (the flag where the ensemble is not fused),
# or label_disagreement as a multiplier of the label family's positive evidence (no member column)


@dataclass(frozen=True)
class FusionConfig:
    """One fusion recipe (build it with :func:`fusion_config`, which validates). The defaults are the recipe the
    quality suite's leave-one-scenario-out selection chose on all scenarios (benchmarks/results/quality.json,
    ``selection.chosen_on_all``; docs/scoring.md); conf/report/default.yaml's ``fusion`` repeats them."""

    method: str = "label_backbone_product"  # one of FUSION_METHODS
    by_class: bool = False  # centre (robust_z) or rank (normal_scores) each column within its given class (candidate; not the default since round 6)
    exclude: tuple[str, ...] = ("outlier_score",)  # columns left out (the default since the sixteenth round: the atypical family
    # in input space alone; () = every declared signal, rounds 1-15; candidate no_weak_label: EL2N, GraNd, forgetting)
    any_of: tuple[str, ...] = ()  # families whose evidence is the max of their members (candidate: ("atypical",), input and embedding space as different views)
    weighting: str = "mean"  # mean (members equally weighted) | agreement (weighted by the consensus eigenvector)
    normalise: str = "robust_z"  # robust_z (median / MAD) | normal_scores (within-class rank -> normal quantile) | label_ranks (label family by normal_scores, the rest robust_z)
    alpha: float = 0.01  # label_backbone (0.01 in the thirteenth and fourteenth rounds and since the twenty-third, 0.05 in the
    # fifteenth, twenty-first and twenty-second, 0.2 in rounds 16-20): another family adds evidence beyond its null level
    # (Bonferroni z_(alpha / n) at least)
    spread: str = "mad"  # robust_z's scale (SPREADS): mad | upper_mad (does not collapse when most rows sit at a floor; the default of rounds 6-14)
    null: str = "tail"  # label_backbone's null level (NULLS): tail (fitted to each family's upper quarter) | normal (Bonferroni)
    trim: bool = False  # a family's mean drops each row's largest and smallest member z (3+ members present)
    centre: str = "class"  # with by_class, robust_z (CENTRES): class (the class median) | undisputed (the median of the class's rows not flagged is_label_issue)
    balance: str = "sources"  # a family's mean (BALANCES): sources (each source's mean, then their mean; the default since the
    # fifteenth round) | members (one mean over all) | skill (the eighteenth round's candidate: as sources, but the label
    # family's two models, the network and the cross-fitted learner, share their sources' weight by the stacking weight
    # of their held-out probabilities, fusion.held_out_stacking_weight; it needs label=members, whose family holds them)
    label: str = "network_and_ensemble"  # LABEL_EVIDENCE: network_and_ensemble (the default since the twenty-first round,
    # the twentieth's candidate: the network's in-sample views, ENSEMBLE_COLUMN in place of the
    # held-out models' own views, weighing as the models it averages (fusion.ensemble_models: 2, or 1 with only one of them)
    # under balance=sources, and the duplicates' evidence) | members (every label member but the ensemble; rounds 15-20)
    # | ensemble (the label family is ENSEMBLE_COLUMN and is_label_conflict, where the ensemble is among the columns)
    conflict: str = "share"  # CONFLICT_EVIDENCE: the label family's duplicate member: share (label_disagreement: the share of
    # the row's exact copies labelled otherwise; the default of the fourteenth round and since the twenty-third; the flag
    # where keep.parquet lacks it) | flag (is_label_conflict, 0/1 on every member of a group whose labels disagree; the
    # default of the other rounds but the twenty-first) | copies (the twenty-first
    # round's default: with the ensemble fused, label="ensemble" or "network_and_ensemble", each exact copy of a row counts
    # as one more observation of its label inside the ensemble's probability, fusion.ensemble_with_copies; with
    # label="members", or without held-out probabilities, the flag) | lift (the twenty-fourth round's candidate: no duplicates
    # member; the label family's evidence, where positive, times 1 + label_disagreement, so of a disputed pair the row the
    # models already suspect rises and its twin does not, fusion.lifted_by_copies)


DEFAULT = FusionConfig()


def fusion_config(values: dict | None = None, where: str = "fusion") -> FusionConfig:
    """:data:`DEFAULT` with `values` (a partial recipe: field -> value; lists become tuples) applied, validated:
    an unknown key or a value outside its allowed set raises ExemplarError naming ``<where>.<key>``, what was
    given, what is allowed and the fix."""
    values = dict(values or {})
    known = [f.name for f in fields(FusionConfig)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ExemplarError(f"unknown setting(s) {[f'{where}.{k}' for k in unknown]}: a fusion recipe has {known}. "
                            f"Fix: remove them or correct their names (conf/report/default.yaml lists every one).")
    for key in ("exclude", "any_of"):
        if key in values:
            values[key] = _names(values[key], f"{where}.{key}")
    config = replace(DEFAULT, **values)
    _check_values(config, where)
    return config


CHOICES = (("method", FUSION_METHODS), ("weighting", WEIGHTINGS), ("normalise", NORMALISATIONS), ("spread", SPREADS),
           ("null", NULLS), ("centre", CENTRES), ("balance", BALANCES), ("label", LABEL_EVIDENCE), ("conflict", CONFLICT_EVIDENCE))


def _check_values(config: FusionConfig, where: str) -> None:
    """Raise ExemplarError naming ``<where>.<key>`` for the first value outside its allowed set or range."""
    for key, allowed in CHOICES:
        if getattr(config, key) not in allowed:
            raise ExemplarError(f"{where}.{key} must be one of {allowed}, got {getattr(config, key)!r}. "
                                f"Fix: e.g. {where}.{key}={getattr(DEFAULT, key)} (the shipped recipe's).")
    if isinstance(config.alpha, bool) or not isinstance(config.alpha, (int, float)) or not 0.0 < config.alpha <= 1.0:
        raise ExemplarError(f"{where}.alpha must be a number in (0, 1], got {config.alpha!r}. Fix: e.g. {where}.alpha={DEFAULT.alpha}.")
    for key in ("by_class", "trim"):
        if not isinstance(getattr(config, key), bool):
            raise ExemplarError(f"{where}.{key} must be true or false, got {getattr(config, key)!r}. Fix: e.g. {where}.{key}=false.")
    if config.balance == "skill" and config.label != "members":
        raise ExemplarError(f"{where}.balance=skill weighs the label family's two models by their held-out views, which only "
                            f"{where}.label=members fuses (got {where}.label={config.label}: the held-out views enter through the "
                            f"ensemble). Fix: add {where}.label=members, or choose {where}.balance=sources.")


def recipe_settings(config: FusionConfig) -> dict:
    """`config` as plain settings, field -> value, tuples as lists (as Hydra and JSON hold them)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()}


def _names(value: object, key: str) -> tuple[str, ...]:
    """A list (or tuple) of names as a tuple; anything else raises ExemplarError naming `key`."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ExemplarError(f"{key} must be a list of names, got {value!r}. Fix: e.g. {key}=[outlier_score] or {key}=[].")
    return tuple(value)


def require_known_names(config: FusionConfig, where: str = "fusion") -> None:
    """Raise ExemplarError when ``exclude`` names a column no scorer writes (``<name>_score``) or ``any_of`` a
    family no signal declares, with the closest valid names (imports the scoring registry, hence pandas)."""
    from exemplar.scoring.registry import SCORERS, SIGNALS
    from exemplar.settings import closest

    columns = {f"{name}_score" for name in {*SIGNALS, *SCORERS} - {"label_conflict"}}  # is_label_conflict is not a score column
    family_names = {signal.family for signal in SIGNALS.values()} | {name for name in SCORERS if name not in SIGNALS}
    for key, given, valid in (("exclude", config.exclude, columns), ("any_of", config.any_of, family_names)):
        unknown = [name for name in given if name not in valid]
        if unknown:
            near = sorted({n for name in unknown for n in closest(name, valid)})
            raise ExemplarError(f"{where}.{key} has unknown name(s) {unknown}{f' (did you mean {near}?)' if near else ''}; "
                                f"valid: {sorted(valid)}. Fix: correct or remove them.")
