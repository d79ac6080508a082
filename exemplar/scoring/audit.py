"""Every per-example score of one training run, in one sweep over its checkpoints.

For each checkpoint the fused pass (:mod:`exemplar.scoring.passes`) runs at most once; from it come
the last-layer TracIn gradients, VoG's input-gradient maps (inside the VoG window), EL2N (at the early
checkpoint), and the final predictions and embeddings. Only the optional pieces cost more:
GraNd (per-example parameter gradients at the early checkpoint of each seed) and TracIn beyond the
last layer (projected per-example gradients at every checkpoint). With TracIn beyond the last layer
the fused pass runs only where VoG's input gradients are needed: elsewhere the logits and embeddings
come from the gradient pass's own forward (the head's output and input), or are not needed at all.

I/O is passed in: each checkpoint is a :class:`CheckpointRef` whose ``load()`` returns the model and
its learning rate, so this module never touches the disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from exemplar.errors import ExemplarError
from exemplar.scoring.config import ScoreConfig, early_checkpoint_index
from exemplar.scoring.crossfit import crossfit_signals
from exemplar.scoring.dynamics import average_seeds, dynamics_scores
from exemplar.scoring.gradients import GaussianProjector, example_gradient_norms, gradient_sketch
from exemplar.scoring.outlier import knn_distance
from exemplar.scoring.passes import PassOutputs, freeze, fused_pass
from exemplar.scoring.projection import ModuleRecorder
from exemplar.scoring.registry import NEEDS, ScoringContext, check_names, compute_scores
from exemplar.scoring.tracin import DenseFeatures, LastLayerFeatures, top_influences, topk_table
from exemplar.scoring.vog import VogAccumulator, class_zscores, window_indices


@dataclass
class CheckpointRef:
    epoch: int
    load: Callable[[], tuple[torch.nn.Module, float]]  # -> (model in eval mode, learning rate eta_i)


@dataclass
class ScoringData:
    ids: np.ndarray  # (N,) example ids
    x: torch.Tensor  # (N, ...) float32 model inputs
    labels: torch.Tensor  # (N,) int64 given labels
    is_train: np.ndarray  # (N,) bool: training rows (TracIn candidates, kNN reference set)
    oos_probs: np.ndarray | None = None  # (N, K) cross-fitted out-of-sample probabilities (exemplar.scoring.crossfit)


@dataclass
class ScoringResult:
    scores: pd.DataFrame  # id, pred, <name>_score ...
    influence: pd.DataFrame | None  # test_id, train_id, kind, rank, influence, variant
    summary: dict


@dataclass
class _Sweep:
    """What the sweep over the main seed's checkpoints accumulates."""

    lrs: list[float] = field(default_factory=list)
    features: list = field(default_factory=list)  # TracIn features per checkpoint
    self_influence: np.ndarray | None = None
    vog: VogAccumulator = field(default_factory=VogAccumulator)
    early_logits: list[np.ndarray] = field(default_factory=list)
    grand: list[np.ndarray] = field(default_factory=list)
    final: PassOutputs | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def _timed(sweep: _Sweep, key: str, started: float) -> None:
    sweep.seconds[key] = sweep.seconds.get(key, 0.0) + time.perf_counter() - started


def _needs(config: ScoreConfig) -> set[str]:
    needs = {NEEDS[name] for name in config.signals if name in NEEDS}
    if config.influence_top_k > 0:
        needs.add("tracin")
    return needs


def _vog_targets(data: ScoringData, checkpoints: list[CheckpointRef], config: ScoreConfig) -> torch.Tensor:
    """The class whose logit VoG differentiates: the given label or the final model's prediction."""
    if config.vog_label == "given":
        return data.labels
    model, _ = checkpoints[-1].load()
    return torch.from_numpy(fused_pass(model, data.x, None, config.batch_size).logits.argmax(axis=1))


def _tracin_features(model, out: PassOutputs | None, data: ScoringData, config: ScoreConfig, projector,
                     recorder: ModuleRecorder | None = None) -> object:
    if config.tracin_scope == "last_layer":
        return LastLayerFeatures.from_outputs(out.logits, out.embeddings, data.labels.numpy())
    prefixes = config.tracin_layers if config.tracin_scope == "layers" else None
    keep = config.influence_top_k > 0
    squared, grads = gradient_sketch(model, data.x, data.labels, projector, prefixes, config.gradient_chunk, keep,
                                     config.gradient_method, config.tracin_exact_norms, recorder)
    return DenseFeatures(grads, squared)


def _add_tracin(sweep: _Sweep, features, lr: float, keep: bool) -> None:
    contribution = lr * features.squared_norms()
    sweep.self_influence = contribution if sweep.self_influence is None else sweep.self_influence + contribution
    if keep:
        sweep.features.append(features)


def _own_pass_needed(flags: dict, config: ScoreConfig) -> bool:
    """Whether this checkpoint needs a fused pass of its own: for VoG's input gradients, for last-layer
    TracIn, or for logits/embeddings (early, final) that no parameter-gradient pass will give."""
    tracin = "tracin" in flags["needs"]
    if flags["vog_targets"] is not None or (tracin and config.tracin_scope == "last_layer"):
        return True
    return (flags["is_early"] or flags["is_final"]) and not tracin


def _recorded_outputs(recorder: ModuleRecorder | None, rows: int) -> PassOutputs | None:
    """The fused pass's outputs (without VoG maps) from the head's input and output in the gradient pass."""
    joined = recorder.joined(rows) if recorder is not None else None
    return PassOutputs(joined[1], joined[0], None) if joined is not None else None


def _visit(sweep: _Sweep, ref: CheckpointRef, flags: dict, data: ScoringData, config: ScoreConfig, projector) -> None:
    """Score one checkpoint of the main seed into `sweep`."""
    started = time.perf_counter()
    model, lr = ref.load()
    sweep.lrs.append(float(lr))
    out = fused_pass(model, data.x, flags["vog_targets"], config.batch_size) if _own_pass_needed(flags, config) else None
    freeze(model)
    _timed(sweep, "fused_pass", started)
    if out is not None and out.input_maps is not None:
        sweep.vog.add(out.input_maps)
        out.input_maps = None  # folded into the accumulator; do not keep (N, pixels) per checkpoint
    wanted = flags["is_early"] or flags["is_final"]
    if "tracin" in flags["needs"]:
        started = time.perf_counter()
        recorder = ModuleRecorder(model.head) if out is None and wanted else None
        _add_tracin(sweep, _tracin_features(model, out, data, config, projector, recorder), lr, config.influence_top_k > 0)
        out = out if out is not None else _recorded_outputs(recorder, len(data.x))
        _timed(sweep, "tracin", started)
    if wanted and out is None:  # the gradient pass took a path without one batched forward (vmap)
        started = time.perf_counter()
        out = fused_pass(model, data.x, None, config.batch_size)
        _timed(sweep, "fused_pass", started)
    if flags["is_early"]:
        _add_early(sweep, model, out.logits, data, config, "grand" in flags["needs"])
    if flags["is_final"]:
        sweep.final = out


def _add_early(sweep: _Sweep, model, logits: np.ndarray, data: ScoringData, config: ScoreConfig, grand: bool) -> None:
    """EL2N's logits and (optionally) GraNd's gradient norms at one seed's early checkpoint."""
    sweep.early_logits.append(logits)
    if grand:
        started = time.perf_counter()
        sweep.grand.append(example_gradient_norms(model, data.x, data.labels, None, config.gradient_chunk, config.gradient_method))
        _timed(sweep, "grand", started)


def _sweep(data: ScoringData, checkpoints: list[CheckpointRef], others: list[CheckpointRef], config: ScoreConfig) -> _Sweep:
    needs = _needs(config)
    epochs = [c.epoch for c in checkpoints]
    early = early_checkpoint_index(epochs, config.el2n_epoch)
    vog_rows = set(window_indices(len(epochs), config.vog_window)) if "vog" in needs else set()
    targets = _vog_targets(data, checkpoints, config) if vog_rows else None
    projector = GaussianProjector(config.projection_dim, config.projection_seed) if config.projection_dim else None
    sweep = _Sweep()
    for index, ref in enumerate(checkpoints):
        flags = {"needs": needs, "vog_targets": targets if index in vog_rows else None,
                 "is_early": index == early, "is_final": index == len(checkpoints) - 1}
        _visit(sweep, ref, flags, data, config, projector)
    for ref in others:
        model, _ = ref.load()
        _add_early(sweep, model, fused_pass(model, data.x, None, config.batch_size).logits, data, config, "grand" in needs)
    return sweep


def _pieces(sweep: _Sweep, data: ScoringData, config: ScoreConfig, dynamics: list[pd.DataFrame]) -> dict[str, np.ndarray]:
    """The (N,) arrays behind the costly scorers that were requested."""
    needs, pieces = _needs(config), {}
    if "tracin" in needs:
        pieces["self_influence"] = sweep.self_influence
    if "grand" in needs:
        pieces["grand"] = np.mean(sweep.grand, axis=0)
    if "vog" in needs:
        groups = data.labels.numpy() * 2 + data.is_train.astype(np.int64)  # z-score within class and split
        pieces["vog"] = class_zscores(sweep.vog.raw_vog(), groups, config.vog_absolute)
    if "dynamics" in needs:
        table = average_seeds([dynamics_scores(frame) for frame in dynamics]).reindex(data.ids)
        pieces.update({c.removesuffix("_score"): table[c].to_numpy(dtype=np.float64) for c in table.columns})
    if "embedding_knn" in needs:
        pieces["outlier"] = knn_distance(sweep.final.embeddings, data.is_train, config.outlier_k)
    if "input_knn" in needs:
        pieces["input_outlier"] = knn_distance(data.x.numpy(), data.is_train, config.outlier_k)
    if "crossfit" in needs:
        if data.oos_probs is None:
            raise ExemplarError("the oos_* / label_issue scores need cross-fitted probabilities (ScoringData.oos_probs). "
                                "Fix: run the score flow (it fits the folds), or drop them from score.signals.")
        pieces.update(crossfit_signals(data.oos_probs, data.labels.numpy(), data.is_train))
    return pieces


def influence_queries(data: ScoringData, extra_ids: list[str]) -> np.ndarray:
    """Row indices to explain: every non-training row plus the rows of `extra_ids` (in id order given)."""
    extra = np.flatnonzero(np.isin(data.ids, np.asarray(extra_ids, dtype=object)))
    return np.union1d(np.flatnonzero(~data.is_train), extra)


def _influence(sweep: _Sweep, data: ScoringData, config: ScoreConfig) -> pd.DataFrame | None:
    queries, candidates = influence_queries(data, config.influence_ids), np.flatnonzero(data.is_train)
    if config.influence_top_k == 0 or not len(queries) or not len(candidates):
        return None
    tables = [
        topk_table(data.ids, queries, top_influences(sweep.features, sweep.lrs, queries, candidates, config.influence_top_k, cosine), variant)
        for variant, cosine in (("dot", False), ("cosine", True))
    ]
    return pd.concat(tables, ignore_index=True)


def score_examples(
    data: ScoringData, checkpoints: list[CheckpointRef], config: ScoreConfig,
    other_seed_early: list[CheckpointRef] | None = None, dynamics: list[pd.DataFrame] | None = None,
) -> ScoringResult:
    """Compute ``config.signals`` for every row of `data` from one seed's `checkpoints` (oldest first).

    `other_seed_early`: the early checkpoint of each further seed (EL2N and GraNd are averaged over
    seeds, Paul et al. 2021). `dynamics`: one long table per seed (training rows only).
    """
    check_names(config.signals)
    if not checkpoints:
        raise ExemplarError("scoring needs at least one checkpoint. Fix: run the train stage first.")
    sweep = _sweep(data, checkpoints, other_seed_early or [], config)
    context = ScoringContext(data.labels.numpy(), sweep.final.logits, sweep.early_logits, _pieces(sweep, data, config, dynamics or []))
    scores = compute_scores(data.ids, context, config.signals)
    scores.insert(1, "pred", sweep.final.logits.argmax(axis=1))
    if "is_label_issue" in context.pieces:
        scores["is_label_issue"] = context.pieces["is_label_issue"]
    started = time.perf_counter()
    influence = _influence(sweep, data, config)
    _timed(sweep, "influence_topk", started)
    epochs = [c.epoch for c in checkpoints]
    summary = {
        "checkpoints": epochs, "learning_rates": sweep.lrs, "seeds": 1 + len(other_seed_early or []),
        "el2n_checkpoint_epoch": epochs[early_checkpoint_index(epochs, config.el2n_epoch)],
        "vog_checkpoint_epochs": [epochs[i] for i in window_indices(len(epochs), config.vog_window)],
        "tracin_scope": config.tracin_scope, "seconds": sweep.seconds,
    }
    return ScoringResult(scores, influence, summary)
