"""The cross-fitted population as the out-of-fold learner: what would it give the audit queue?
(writes benchmarks/results/population_oos.json)

Issue 9 asked for out-of-sample predictions that cost little extra training, "for example: the
population's models *are* the folds". The train stage already trains a cross-fitted population for the
compress stage (``train.crossfit_folds`` K = 2 x ``train.crossfit_repeats`` R = 4 networks, each on the
training rows outside its fold), so every training row has R networks that never saw it: out-of-fold
probabilities at no extra training. This benchmark measures, on saved suite runs (``bench_quality.py run``
tables with their run directories), per table:

- ``population_confidence``: cleanlab's self-confidence (1 - p_y) on the mean softmax of the held-out
  networks (the population as the learner: the same-learner anchor it would set);
- ``population_label_issue``: cleanlab's per-class-adjusted label-quality score on the same probabilities;
- ``default``: the shipped ``audit_score`` recomputed from the table's columns (as ``analyse`` does);
- ``population_as_learner``: the shipped recipe with the three out-of-sample columns (``oos_confidence``,
  ``oos_margin``, ``label_issue``) computed from the population instead of the independent learner;
- the table's own anchor, cleanlab on the independent learner (``cleanlab_oos_learner``).

Each network's training rows are checked against the digest its checkpoint recorded (the compress stage's
own check), so "held out" is what the models really held out.

    .venv/bin/python benchmarks/bench_population_oos.py --tables /work/suite/all9J --jobs 2
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


RESULTS = ROOT / "benchmarks" / "results" / "population_oos.json"
OOS_COLUMNS = {"oos_confidence": "oos_confidence_score", "oos_margin": "oos_margin_score", "label_issue": "label_issue_score"}


def population_probabilities(run_dir: Path) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    """Row ids, (N,) bool training rows, (N,) labels and (N, C) held-out probabilities of a run's
    cross-fitted population (checkpoints and folds as the train stage wrote them)."""
    import torch

    from exemplar.compression.config import CompressConfig
    from exemplar.models.factory import classifier_from_checkpoint
    from exemplar.training.checkpoints import list_checkpoints, load_checkpoint
    from exemplar.training.folds import held_out_probabilities
    from tasks.compress import population_data
    from tasks.layout import RunLayout

    layout = RunLayout(run_dir)
    members = len(list(layout.checkpoints_root.glob("crossfit_*")))
    checkpoints = [load_checkpoint(list_checkpoints(layout.crossfit_checkpoints(j))[-1]) for j in range(members)]
    ids, is_train, data = population_data(layout, CompressConfig(), checkpoints)  # checks each model's rows against its digest
    with torch.no_grad():
        probs = np.stack([torch.cat([torch.softmax(model(data.x[i:i + 4096]), dim=1) for i in range(0, len(data.x), 4096)]).numpy()
                          for model in map(classifier_from_checkpoint, checkpoints)])
    return ids, is_train, data.y.numpy(), held_out_probabilities(probs, data.held_out)


def evaluate(path: Path) -> tuple[str, dict]:
    """One saved table: the figures above on its training rows."""
    import torch

    from bench_quality import _train_metrics, saved_run_dir, signal_columns
    from exemplar.scoring.crossfit import crossfit_signals
    from exemplar.scoring.fusion import fused_values

    torch.set_num_threads(1)
    table = pd.read_parquet(path)
    ids, is_train, labels, probs = population_probabilities(saved_run_dir(path, table))
    signals = crossfit_signals(probs, labels, is_train)
    order = pd.Index(ids).get_indexer(table["id"])
    population = table.copy()
    for key, column in OOS_COLUMNS.items():
        population[column] = np.asarray(signals[key])[order]
    columns = signal_columns(table)
    ap = lambda frame, values: _train_metrics(frame, values)["average_precision"]  # noqa: E731
    name, seed = path.stem.rsplit("__s", 1)
    return name, {
        "seed": int(seed),
        "default": ap(table, fused_values(table, columns)),
        "population_as_learner": ap(population, fused_values(population, columns)),
        "population_confidence": ap(population, population["oos_confidence_score"].to_numpy(np.float64)),
        "population_label_issue": ap(population, population["label_issue_score"].to_numpy(np.float64)),
        "anchor_independent_learner": ap(table, table["cleanlab_oos_learner"].to_numpy(np.float64)),
        "population_accuracy_train": float((probs[is_train].argmax(axis=1) == labels[is_train]).mean()),
    }


def main(argv: list[str] | None = None) -> dict:
    from bench_quality import per_scenario, provenance, saved_tables_arguments

    args = saved_tables_arguments(__doc__.splitlines()[0], RESULTS, argv)
    report = provenance("bench_population_oos.py", argv)
    per = per_scenario(args.tables, evaluate, args.jobs)
    scenarios = {name: {key: float(np.mean([r[key] for r in runs])) for key in runs[0] if key != "seed"} | {"seeds": sorted(r["seed"] for r in runs)}
                 for name, runs in sorted(per.items())}
    deltas = np.array([s["population_as_learner"] - s["default"] for s in scenarios.values()])
    at_or_above = sum(s["population_confidence"] >= s["anchor_independent_learner"] for s in scenarios.values())
    report |= {"summary": {"scenarios": len(scenarios), "population_as_learner_minus_default_mean": float(deltas.mean()),
                           "population_as_learner_at_or_above_default": int((deltas >= 0).sum()),
                           "population_confidence_at_or_above_independent_anchor": int(at_or_above)},
               "scenarios": scenarios}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    result = main()
    print(json.dumps(result["summary"], indent=1))
    for name, body in result["scenarios"].items():
        print(f"{name:<26} default {body['default']:.3f}  population as learner {body['population_as_learner']:.3f}  "
              f"population cleanlab {body['population_confidence']:.3f}  independent cleanlab {body['anchor_independent_learner']:.3f}")
