"""Quality of every score at finding planted problems on digits (writes benchmarks/results/quality.json).

Scenarios (seeded; only training rows are corrupted and evaluated):
- ``label_noise``: 10% of training labels flipped to another class. Positives = flipped rows.
- ``atypical``: 3% of training images inverted, rotated or heavily noised, labels kept. Positives = altered rows.

For each scenario a model is trained exactly as the pipeline's defaults (conf/train/default.yaml,
conf/model/auto.yaml), every score is computed by ``exemplar.scoring.audit.score_examples`` with the
defaults of conf/score/default.yaml, and ``audit_score`` is fused over them with
``exemplar.scoring.fusion.fuse_scores``. Baseline: cleanlab's label-quality score from 5-fold
out-of-fold probabilities of the same CNN (when cleanlab is installed).

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 \
        .venv/bin/python benchmarks/bench_quality.py [--scenarios label_noise atypical] [--no-cleanlab]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exemplar.data.canonical import input_array  # noqa: E402
from exemplar.data.digits import load_digits_dataset  # noqa: E402
from exemplar.models.classifier import input_statistics  # noqa: E402
from exemplar.models.factory import ModelConfig, build_classifier, classifier_from_checkpoint, model_meta  # noqa: E402
from exemplar.scoring.audit import CheckpointRef, ScoringData, score_examples  # noqa: E402
from exemplar.scoring.config import ScoreConfig  # noqa: E402
from exemplar.scoring.fusion import FUSION_METHODS, fuse_scores  # noqa: E402
from exemplar.scoring.quality import detection_metrics, flip_labels, make_atypical  # noqa: E402
from exemplar.scoring.signals import softmax  # noqa: E402
from exemplar.training.config import TrainConfig  # noqa: E402
from exemplar.training.loop import fit  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "quality.json"


def train_in_memory(x: torch.Tensor, y: torch.Tensor, ids: np.ndarray, config: TrainConfig) -> tuple[torch.nn.Module, list[CheckpointRef], pd.DataFrame]:
    """Train the default classifier on (x, y); checkpoints and dynamics are kept in memory."""
    torch.manual_seed(config.seed)
    mean, std = input_statistics(x)
    model = build_classifier(ModelConfig(), "image", tuple(x.shape[1:]), 10, mean, std)
    meta = model_meta(ModelConfig(), "image", tuple(x.shape[1:]), 10)
    saved, frames = {}, []
    fit(model, x, y, config, meta=meta, save_checkpoint=lambda epoch, state: saved.__setitem__(epoch, copy.deepcopy(state)),
        on_epoch=lambda r: frames.append(pd.DataFrame({"id": ids, "epoch": r.epoch, "correct": r.correct, "label_probability": r.label_probability})))
    refs = [CheckpointRef(epoch, lambda s=state: (classifier_from_checkpoint(s), float(s["lr"]))) for epoch, state in sorted(saved.items())]
    return model, refs, pd.concat(frames, ignore_index=True)


def cleanlab_scores(x: torch.Tensor, y: np.ndarray, config: TrainConfig, folds: int = 5) -> np.ndarray:
    """1 - cleanlab label quality (self-confidence) from `folds`-fold out-of-fold CNN probabilities."""
    from cleanlab.rank import get_label_quality_scores
    from sklearn.model_selection import StratifiedKFold

    probs = np.zeros((len(y), 10))
    for fit_rows, held_rows in StratifiedKFold(folds, shuffle=True, random_state=0).split(np.zeros(len(y)), y):
        model, _, _ = train_in_memory(x[fit_rows], torch.from_numpy(y[fit_rows]), np.arange(len(fit_rows)).astype(str), config)
        with torch.no_grad():
            probs[held_rows] = softmax(model(x[held_rows]).numpy())
    return 1.0 - get_label_quality_scores(y, probs)


def scenario_data(name: str, seed: int = 0) -> tuple[np.ndarray, torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """(ids, inputs, labels, is_train, is_positive) of digits with the scenario's corruption planted."""
    dataset = load_digits_dataset()
    images = input_array(dataset)
    labels = dataset.table["label"].to_numpy(dtype=np.int64, copy=True)
    is_train = (dataset.table["split"] == "train").to_numpy()
    rows = np.flatnonzero(is_train)
    if name == "label_noise":
        labels, positive = flip_labels(labels, rows, 0.10, 10, seed)
    else:
        images, positive = make_atypical(images, rows, 0.03, seed)
    return dataset.table["id"].to_numpy(dtype=object), torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)), labels, is_train, positive


def run_scenario(name: str, use_cleanlab: bool, score_config: ScoreConfig, train_config: TrainConfig, tables: Path | None = None) -> dict:
    ids, x, labels, is_train, positive = scenario_data(name)
    y = torch.from_numpy(np.array(labels, copy=True))
    started = time.perf_counter()
    _, refs, dynamics = train_in_memory(x[is_train], y[is_train], ids[is_train], train_config)
    trained = time.perf_counter()
    result = score_examples(ScoringData(ids, x, y, is_train), refs, score_config, dynamics=[dynamics])
    scored = time.perf_counter()
    columns = [c for c in result.scores.columns if c.endswith("_score")]
    table = result.scores[is_train].reset_index(drop=True)
    truth = positive[is_train]
    if tables is not None:
        tables.mkdir(parents=True, exist_ok=True)
        result.scores.assign(is_train=is_train, is_positive=positive).to_parquet(tables / f"{name}.parquet")
    metrics = {c: detection_metrics(truth, table[c].to_numpy()) for c in columns}
    for method in FUSION_METHODS:
        key = "audit_score" if method == FUSION_METHODS[0] else f"audit_score[{method}]"
        metrics[key] = detection_metrics(truth, fuse_scores(result.scores, columns, method)["audit_score"].to_numpy()[is_train])
    for window in ("early", "middle", "late", "all"):
        for absolute in (False, True):
            variant = ScoreConfig(signals=["vog"], influence_top_k=0, vog_window=window, vog_absolute=absolute)
            vog = score_examples(ScoringData(ids, x, y, is_train), refs, variant).scores["vog_score"].to_numpy()[is_train]
            metrics[f"vog_score[{window}{', absolute' if absolute else ''}]"] = detection_metrics(truth, vog)
    if use_cleanlab:
        metrics["cleanlab_label_quality"] = detection_metrics(truth, cleanlab_scores(x[is_train], labels[is_train], train_config))
    return {"positives": int(truth.sum()), "train_rows": int(is_train.sum()), "train_seconds": trained - started,
            "score_seconds": scored - trained, "metrics": metrics}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=["label_noise", "atypical"], choices=["label_noise", "atypical"])
    parser.add_argument("--no-cleanlab", action="store_true", help="skip the 5-fold cleanlab baseline")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--tables", type=Path, default=None, help="also write each scenario's scores here (Parquet)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    use_cleanlab = not args.no_cleanlab
    if use_cleanlab:
        try:
            import cleanlab  # noqa: F401
        except ImportError:
            use_cleanlab = False
    score_config, train_config = ScoreConfig(), TrainConfig()
    report = {
        "command": "python benchmarks/bench_quality.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads()},
        "data": "sklearn digits (1,797 8x8 images; 1,438 train / 359 test), seed 0",
        "score_config": score_config.__dict__, "train_epochs": train_config.epochs,
        "scenarios": {name: run_scenario(name, use_cleanlab, score_config, train_config, args.tables) for name in args.scenarios},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


if __name__ == "__main__":
    for scenario, body in main()["scenarios"].items():
        print(scenario)
        for key, value in body["metrics"].items():
            print(f"  {key:<34} AUROC {value['auroc']:.4f}  AP {value['average_precision']:.4f}  P@k {value['precision_at_k']:.4f}")
