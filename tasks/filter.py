"""Filter: exact and near duplicates, then (when ``prune.fraction_kept`` < 1 or ``prune.count_kept`` is set)
pruning by score, as one ``keep`` mask keyed by id (the data is never rewritten), with label conflicts,
split leakage, class balance and what each rule removed per class in stages/filter.json."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from exemplar.data.canonical import Dataset
from exemplar.data.decisions import apply_removals
from exemplar.data.ingest import check_trainable
from exemplar.models.config import ModelConfig
from exemplar.pruning.config import PruneConfig, score_column, score_name
from exemplar.pruning.filtering import class_balance, filter_dataset
from exemplar.pruning.policy import apply_policy, check_scores_file, random_scores, stored_score_names
from exemplar.training.config import TrainConfig
from tasks import tracking
from tasks._io import write_json, write_parquet
from tasks._prefect import stage_task
from tasks.datasets import read_dataset, tensors
from tasks.layout import RunLayout


def candidate_rows(dataset: Dataset, mask: pd.DataFrame) -> np.ndarray:
    """(N,) bool: training rows the duplicate filter kept (what a pruning policy ranks)."""
    return mask["keep"].to_numpy() & (dataset.table["split"] == "train").to_numpy()


def pruning_scores(cfg: dict, dataset: Dataset, mask: pd.DataFrame, names: list[str], random_seed: int, from_file_only: bool = True) -> pd.DataFrame:
    """Scores indexed by id, one ``<name>_score`` column per name: ``random`` seeded by `random_seed`;
    with ``prune.scores_from``, the names read from that file (all of them, or with `from_file_only`
    False those it holds); the rest from one proxy run on the candidate rows."""
    config = PruneConfig(**cfg["prune"])
    rows = candidate_rows(dataset, mask)
    ids = dataset.table["id"].to_numpy()[rows]
    frame = pd.DataFrame(index=pd.Index(ids, name="id"))
    wanted = [score_name(n) for n in names]
    if "random" in wanted:
        frame["random_score"] = random_scores(ids, random_seed)
    stored = (wanted if from_file_only else stored_score_names(config.scores_from)) if config.scores_from else []
    from_file = [n for n in wanted if n != "random" and n in stored]
    if from_file:
        check_scores_file(config.scores_from, from_file)
        stored = pd.read_parquet(config.scores_from, columns=["id", *map(score_column, from_file)]).drop_duplicates("id")
        frame = frame.join(stored.set_index("id"))
    rest = [n for n in wanted if n != "random" and n not in from_file]
    if rest:  # torch and the proxy model load only here: a filter run without proxy scores needs neither
        import torch

        from exemplar.pruning.proxy import ProxyData, proxy_scores

        x, y = tensors(dataset)
        info = dataset.info
        data = ProxyData(ids, x[torch.from_numpy(rows)], y[torch.from_numpy(rows)], info.modality, info.input_shape, info.num_classes)
        computed = proxy_scores(data, rest, ModelConfig(**cfg["model"]), TrainConfig(**cfg["train"]), config)
        frame = frame.join(computed.set_index("id"))
    return frame


def prune_mask(cfg: dict, dataset: Dataset, mask: pd.DataFrame, scores: pd.DataFrame | None = None, seed: int | None = None) -> tuple[pd.DataFrame, dict]:
    """Apply ``cfg['prune']``'s policy to the duplicate mask; `scores` (indexed by id) are computed when None."""
    config = PruneConfig(**cfg["prune"])
    seed = config.seed if seed is None else seed
    if scores is None:
        scores = pruning_scores(cfg, dataset, mask, [config.score], seed)
    column = scores[score_column(config.score)].rename(score_column(config.score))
    return apply_policy(mask, dataset.table, column, config, dataset.info.class_names)


def _refresh_summary(summary: dict, dataset: Dataset, mask: pd.DataFrame, pruning: dict) -> dict:
    """The filter summary after pruning: counts by reason and class balance of the final mask."""
    dropped = mask.loc[~mask["keep"], "drop_reason"].value_counts()
    return {
        **summary, "kept": int(mask["keep"].sum()), "dropped": int((~mask["keep"]).sum()),
        "dropped_by_reason": {str(r): int(n) for r, n in dropped.items()},
        "class_balance": class_balance(dataset.table, mask["keep"].to_numpy()), "pruning": pruning,
    }


@stage_task("filter")
def filter_rows(cfg: dict, run_dir: str, track: dict) -> dict:
    """Write run_dir/keep.parquet and stages/filter.json; raises if too few training rows are kept."""
    layout = RunLayout(run_dir)
    config = PruneConfig(**cfg["prune"])
    with tracking.stage_run(track["uri"], track["experiment"], "filter", track["parent_run_id"], {"prune": cfg["prune"]}) as run_id:
        dataset = read_dataset(layout.dataset)
        mask, summary = filter_dataset(dataset, config)
        if layout.decisions.exists():  # the reviewer's removals (decisions=), recorded by ingest
            mask, summary = apply_removals(mask, summary, pq.read_table(layout.decisions).to_pandas())
        if config.is_pruning:
            mask, pruning = prune_mask(cfg, dataset, mask)
            summary = _refresh_summary(summary, dataset, mask, pruning)
            train_kept = candidate_rows(dataset, mask)
            counts = np.bincount(dataset.table["label"].to_numpy()[train_kept], minlength=dataset.info.num_classes)
            check_trainable(counts, dataset.info.class_names, f"after pruning by {pruning['score']}",
                            row_counts=np.bincount(dataset.table["label"].to_numpy(), minlength=dataset.info.num_classes))
        write_parquet(mask, layout.keep)
        write_json(summary, layout.stage_metrics("filter"))
        # per-class counts stay in filter.json: class names need not be valid MLflow metric names
        numbers = {k: v for k, v in summary.items() if k not in ("class_balance", "pruning")}
        tracking.log_metrics(track["uri"], run_id, {**numbers, "imbalance_ratio": summary["class_balance"]["imbalance_ratio"]})
    return summary
