"""Scores for pruning from a short proxy run, so that pruning can precede the main training.

The proxy trains ``proxy_seeds`` models (seeds ``seed, seed+1, ...``) for ``proxy_epochs`` epochs on the
candidate training rows, keeping checkpoints and training dynamics in memory, then scores the rows with
the same scorers as the score stage (:func:`exemplar.scoring.audit.score_examples`):

- EL2N and GraNd at epoch ``proxy_el2n_epoch`` averaged over the seeds (Paul et al. 2021, "early in
  training, over a few seeds"),
- forgetting over every proxy epoch averaged over seeds (Toneva et al. 2019), last-layer TracIn
  self-influence over every checkpoint of the first seed,
- ``prototype``: :func:`prototype_score` on each seed's final penultimate embedding, averaged,
- ``audit``: the report stage's fusion over the proxy's label and atypicality signals, with every in-sample label
  member as the label evidence (``label="members"``, alpha 0.05: the proxy has no held-out probabilities).

Nothing touches the disk.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from exemplar.models.classifier import input_statistics
from exemplar.models.factory import ModelConfig, build_classifier, classifier_from_checkpoint, model_meta
from exemplar.pruning.config import PruneConfig, score_name
from exemplar.pruning.prototypes import prototype_score
from exemplar.scoring.audit import CheckpointRef, ScoringData, score_examples
from exemplar.scoring.config import ScoreConfig, early_checkpoint_index
from exemplar.scoring.fusion import fuse_scores
from exemplar.scoring.passes import fused_pass
from exemplar.scoring.registry import SCORERS
from exemplar.training.config import TrainConfig
from exemplar.training.loop import fit

PROXY_FUSION = {"label": "members", "alpha": 0.05, "balance": "members", "spread": "upper_mad", "exclude": ()}  # rounds 8-12's default
AUDIT_SIGNALS = ["loss", "margin", "el2n", "grand", "confidently_wrong", "self_influence", "forgetting", "low_confidence", "variability", "outlier"]


@dataclass
class ProxyData:
    """The candidate training rows and what building their model needs."""

    ids: np.ndarray  # (N,) ids
    x: torch.Tensor  # (N, ...) float32 inputs
    y: torch.Tensor  # (N,) int64 labels
    modality: str
    input_shape: tuple[int, ...]
    num_classes: int


@dataclass
class _SeedRun:
    checkpoints: list[CheckpointRef]  # oldest first
    dynamics: pd.DataFrame  # id, epoch, correct, label_probability
    model: torch.nn.Module  # final weights


def train_proxy(data: ProxyData, model_config: ModelConfig, config: TrainConfig) -> _SeedRun:
    """Train one proxy model, checkpointing every epoch in memory."""
    torch.manual_seed(config.seed)
    mean, std = input_statistics(data.x)
    model = build_classifier(model_config, data.modality, data.input_shape, data.num_classes, mean, std)
    meta = model_meta(model_config, data.modality, data.input_shape, data.num_classes)
    saved, frames = {}, []

    def record(result) -> None:
        frames.append(pd.DataFrame({"id": data.ids, "epoch": result.epoch, "correct": result.correct, "label_probability": result.label_probability}))

    fit(model, data.x, data.y, config, meta=meta, save_checkpoint=lambda epoch, state: saved.__setitem__(epoch, copy.deepcopy(state)), on_epoch=record)
    refs = [CheckpointRef(epoch, lambda s=state: (classifier_from_checkpoint(s), float(s["lr"]))) for epoch, state in sorted(saved.items())]
    return _SeedRun(refs, pd.concat(frames, ignore_index=True), model)


def proxy_train_config(base: TrainConfig, config: PruneConfig, seed: int) -> TrainConfig:
    """The main training settings, shortened to the proxy's epochs, checkpointing every epoch."""
    return replace(base, epochs=config.proxy_epochs, seed=seed, checkpoint_every=1, checkpoint_epochs=[], population=1)


def signals_for(names: list[str]) -> list[str]:
    """The registered scorers needed to produce `names` (``audit`` needs all of :data:`AUDIT_SIGNALS`)."""
    wanted = {score_name(n) for n in names}
    signals = [n for n in SCORERS if n in wanted]
    if "audit" in wanted:
        signals += [n for n in AUDIT_SIGNALS if n not in signals]
    return signals


def proxy_scores(data: ProxyData, names: list[str], model_config: ModelConfig, train: TrainConfig, config: PruneConfig) -> pd.DataFrame:
    """One row per id with a ``<name>_score`` column for each requested name (registered scorers,
    ``prototype``, ``audit``); ``random`` is not a proxy score (see :func:`exemplar.pruning.policy.random_scores`)."""
    runs = [train_proxy(data, model_config, proxy_train_config(train, config, config.seed + s)) for s in range(config.proxy_seeds)]
    wanted = {score_name(n) for n in names}
    frame = pd.DataFrame({"id": data.ids})
    signals = signals_for(names)
    if signals:
        frame = _signal_scores(data, runs, signals, config)
    if "prototype" in wanted:
        k = config.prototype_clusters or data.num_classes
        per_seed = [prototype_score(fused_pass(run.model, data.x, None).embeddings, k, config.seed + s) for s, run in enumerate(runs)]
        frame["prototype_score"] = np.mean(per_seed, axis=0)
    if "audit" in wanted:
        # the proxy has no held-out probabilities: its label evidence is every in-sample member, as in the
        # report's fusion of rounds 8-12 (docs/scoring.md), pinned whole (alpha, one mean over members, the upper-half
        # MAD, every member) so that the report's default can change without changing what the pruning curves measured
        frame = fuse_scores(frame, [f"{n}_score" for n in AUDIT_SIGNALS], **PROXY_FUSION).drop(columns="audit_rank")
    keep = ["id", *[c for c in frame.columns if c.endswith("_score") and c.removesuffix("_score") in wanted]]
    return frame[keep]


def _signal_scores(data: ProxyData, runs: list[_SeedRun], signals: list[str], config: PruneConfig) -> pd.DataFrame:
    settings = ScoreConfig(signals=signals, el2n_epoch=config.proxy_el2n_epoch, influence_top_k=0)
    epochs = [ref.epoch for ref in runs[0].checkpoints]
    early = early_checkpoint_index(epochs, config.proxy_el2n_epoch)
    scoring = ScoringData(data.ids, data.x, data.y, np.ones(len(data.ids), dtype=bool))
    result = score_examples(scoring, runs[0].checkpoints, settings, [run.checkpoints[early] for run in runs[1:]], [run.dynamics for run in runs])
    return result.scores.drop(columns="pred")
