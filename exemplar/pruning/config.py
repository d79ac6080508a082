"""Filtering and pruning settings (the ``prune`` config group).

Duplicates (``drop_exact_duplicates`` ...) and pruning by score (``fraction_kept`` ...) both write the
``keep`` mask; the pruning-curve experiment reads ``curve`` (:class:`CurveConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from exemplar.errors import ExemplarError

KEEP_DIRECTIONS = ("hard", "easy", "drop_top")  # keep the highest scores / the lowest / drop the highest
LABEL_FREE_SCORES = ("random", "prototype")  # need no label-trusting model signal
FILE_ONLY_SCORES = ("audit",)
BUDGETS = ("steps", "epochs")  # what the curve's points hold fixed  # fused in the report stage; the proxy can fuse its own signals instead


def score_name(name: str) -> str:
    """Canonical score name: ``el2n_score`` and ``el2n`` both mean ``el2n``; ``audit_score`` is ``audit``."""
    return name[: -len("_score")] if name.endswith("_score") else name


def score_column(name: str) -> str:
    """The column a score lives in: ``<name>_score`` (``audit_score`` for ``audit``)."""
    return f"{score_name(name)}_score"


@dataclass
class CurveConfig:
    """The pruning-curve experiment (``flows/prune_curve.py``): every (score, direction, fraction, seed)
    point retrains a model on the kept rows and records its test accuracy."""

    fractions: list[float] = field(default_factory=lambda: [1.0, 0.9, 0.7, 0.5, 0.3])
    scores: list[str] = field(default_factory=lambda: ["random", "el2n", "grand", "forgetting", "self_influence", "prototype", "audit"])
    directions: list[str] = field(default_factory=lambda: ["hard", "easy"])  # for scores where direction matters
    audit_directions: list[str] = field(default_factory=lambda: ["drop_top"])  # audit ranks suspicion, not difficulty
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    epochs: int = 10  # training epochs of the full-data point
    budget: str = "steps"  # steps: every point takes the full-data point's optimizer steps (more epochs on fewer rows) | epochs: same epochs
    workers: int = 2  # points trained at once with runner=threads (runner=dask uses runner.max_workers)
    torch_threads: int = 1  # torch threads while the curve runs (small models: parallel points beat threads per op)

    def validate(self) -> None:
        if not self.fractions or any(not 0.0 < f <= 1.0 for f in self.fractions):
            raise ExemplarError(f"prune.curve.fractions must be a non-empty list of values in (0, 1], got {self.fractions}. Fix: e.g. prune.curve.fractions=[1.0,0.5].")
        if not self.scores or not self.seeds or self.epochs < 1:
            raise ExemplarError("prune.curve.scores and prune.curve.seeds must be non-empty and prune.curve.epochs >= 1. Fix: e.g. prune.curve.scores=[random,el2n] prune.curve.seeds=[0].")
        if self.budget not in BUDGETS or self.workers < 1 or self.torch_threads < 1:
            raise ExemplarError(f"prune.curve.budget must be one of {BUDGETS} and prune.curve.workers, prune.curve.torch_threads >= 1, got {self.budget}, {self.workers}, {self.torch_threads}.")
        bad = sorted({d for d in self.directions + self.audit_directions if d not in KEEP_DIRECTIONS})
        if bad or not self.directions or not self.audit_directions:
            raise ExemplarError(f"prune.curve.directions and prune.curve.audit_directions take values from {KEEP_DIRECTIONS}, got {bad or 'an empty list'}.")


@dataclass
class PruneConfig:
    drop_exact_duplicates: bool = True  # keep one row per content hash, mask the rest
    find_near_duplicates: bool = True  # report groups of near-identical rows (cosine similarity)
    near_duplicate_threshold: float = 0.98  # cosine similarity at or above which two rows are near duplicates
    drop_near_duplicates: bool = False  # also mask all but one row of each near-duplicate group
    near_duplicate_max_rows: int = 50000  # skip the search (and say so in the metrics) above this many rows
    groups_shown: int = 20  # how many groups/ids the metrics list by name
    # pruning by score (exemplar.pruning.policy); fraction_kept=1.0 and count_kept=null: no pruning
    fraction_kept: float = 1.0  # of the training rows left after duplicate removal
    count_kept: int | None = None  # or exactly this many training rows (overrides fraction_kept)
    score: str = "el2n"  # any registered <name>, prototype, random, or audit (needs scores_from, or fused from the proxy)
    keep: str = "hard"  # hard: keep the highest scores | easy: keep the lowest | drop_top: drop the highest (cleaning)
    class_balanced: bool = True  # every class keeps the same fraction (else one global ranking)
    min_per_class: int = 2  # never keep fewer training rows of a class (a class smaller than this is kept whole)
    scores_from: str | None = None  # an earlier run's scores.parquet; else a proxy run computes the score
    proxy_epochs: int = 10  # proxy training epochs (forgetting, self-influence, prototypes use all of them)
    proxy_el2n_epoch: int = 2  # EL2N and GraNd read at this epoch (Paul et al.: early in training)
    proxy_seeds: int = 3  # proxy models; EL2N, GraNd and dynamics are averaged over them
    prototype_clusters: int | None = None  # k of k-means for the prototype score; null: the number of classes
    seed: int = 0  # seeds the random score and the first proxy model
    curve: dict = field(default_factory=dict)  # CurveConfig fields (flows/prune_curve.py)

    @property
    def is_pruning(self) -> bool:
        """Whether a score-based policy removes any training row."""
        return self.count_kept is not None or self.fraction_kept < 1.0

    def curve_config(self) -> CurveConfig:
        known = {f.name for f in fields(CurveConfig)}
        unknown = sorted(set(self.curve) - known)
        if unknown:
            raise ExemplarError(f"prune.curve has unknown key(s) {unknown}; valid: {sorted(known)}.")
        return CurveConfig(**self.curve)

    def validate(self) -> None:
        if not 0.0 < self.near_duplicate_threshold <= 1.0:
            raise ExemplarError(
                f"prune.near_duplicate_threshold must be in (0, 1], got {self.near_duplicate_threshold}. "
                "Fix: e.g. prune.near_duplicate_threshold=0.98 (1.0 finds only identical directions)."
            )
        if self.drop_near_duplicates and not self.find_near_duplicates:
            raise ExemplarError("prune.drop_near_duplicates=true needs prune.find_near_duplicates=true. Fix: set both, or neither.")
        if self.near_duplicate_max_rows < 2 or self.groups_shown < 0:
            raise ExemplarError("prune.near_duplicate_max_rows must be >= 2 and prune.groups_shown >= 0.")
        from exemplar.pruning.policy import check_prune_settings  # the pruning checks live with the policy

        check_prune_settings(self)
        self.curve_config().validate()
