"""Compare training recipes on the quality suite's saved runs (writes benchmarks/results/recipes.json).

Each recipe is a folder of ``bench_quality.py run`` tables made with its settings, e.g.

    python benchmarks/bench_quality.py run --tables /work/suite/A                      # the default
    python benchmarks/bench_quality.py run --tables /work/suite/D --set train.population=3
    python benchmarks/bench_recipes.py A=/work/suite/A D="train.population=3:/work/suite/D" [...]

For every recipe and scenario x seed it reads the run's stored ``audit_score`` (the fused queue exactly
as that run's pipeline built it), the test accuracy and the out-of-sample CIE count at 90 % sparsity
from the run's ``metrics.json``, and the pipeline's wall time; then it pairs every recipe with the
first one on the runs both have (same scenario, same seed, same corrupted rows) and reports the mean
and range of the AP differences. Timings come from a shared machine: compare them within a recipe
pair, not with the quiet-machine figures of bench_pipeline.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from exemplar.scoring.fusion import split_groups  # noqa: E402
from exemplar.scoring.quality import detection_metrics  # noqa: E402
from provenance import git_commit  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "recipes.json"


def run_facts(table_path: Path) -> dict:
    """One run: held AP of its fused queue on training rows, test accuracy, CIE p90 count, seconds."""
    table = pd.read_parquet(table_path)
    rows = split_groups(table)["train"]
    truth = table["is_positive"].to_numpy()[rows]
    metrics = json.loads((table_path.parent / "runs" / table_path.stem / "metrics.json").read_text())
    headline = metrics.get("headline", metrics)
    return {
        "run": table_path.stem,
        "audit_ap": detection_metrics(truth, table["audit_score"].to_numpy(dtype=float)[rows])["average_precision"],
        "test_accuracy": _find(headline, "test_accuracy"),
        "cie_p90": _find(headline, "cie_p90"),
        "pipeline_seconds": float(table["pipeline_seconds"].iloc[0]),
    }


def _find(tree: dict, key: str):
    if key in tree:
        return tree[key]
    for value in tree.values():
        if isinstance(value, dict) and (found := _find(value, key)) is not None:
            return found
    return None


def compare(recipes: dict[str, tuple[str, Path]]) -> dict:
    frames = {name: pd.DataFrame([run_facts(p) for p in sorted(folder.glob("*__s*.parquet"))]).set_index("run")
              for name, (_, folder) in recipes.items()}
    baseline = next(iter(recipes))
    out = {"baseline": baseline, "recipes": {}}
    for name, (settings, folder) in recipes.items():
        frame = frames[name]
        paired = frame.join(frames[baseline].add_suffix("_base"), how="inner")
        delta = paired["audit_ap"] - paired["audit_ap_base"]
        scenario = paired.index.str.replace(r"__s\d+$", "", regex=True)
        out["recipes"][name] = {
            "settings": settings, "tables": str(folder), "runs": len(frame),
            "mean_audit_ap": float(frame["audit_ap"].mean()), "mean_pipeline_seconds": float(frame["pipeline_seconds"].mean()),
            "paired_runs": len(paired), "audit_ap_minus_baseline": {
                "mean": float(delta.mean()), "min": float(delta.min()), "max": float(delta.max()),
                "per_scenario": {s: round(float(d), 4) for s, d in delta.groupby(scenario).mean().items()},
            },
            "per_run": frame.round(4).reset_index().to_dict(orient="records"),
        }
    return out


def parse_recipe(text: str) -> tuple[str, tuple[str, Path]]:
    name, _, rest = text.partition("=")
    settings, _, folder = rest.rpartition(":")
    return name, (settings or "defaults", Path(folder))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="+", help="NAME=[SETTINGS:]TABLES; the first is the baseline")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--runs-commit", default="", help="the commit the tables' pipeline runs were made on (recorded)")
    args = parser.parse_args(argv)
    report = {"command": "python benchmarks/bench_recipes.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "git_commit": git_commit(), "runs_commit": args.runs_commit or "same as git_commit", "load_average": os.getloadavg(), **compare(dict(map(parse_recipe, args.recipes)))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    for name, body in report["recipes"].items():
        d = body["audit_ap_minus_baseline"]
        print(f"{name:<3} {body['settings']:<22} runs {body['runs']:>2}  mean AP {body['mean_audit_ap']:.3f}  "
              f"vs {report['baseline']}: {d['mean']:+.4f} [{d['min']:+.3f}, {d['max']:+.3f}] over {body['paired_runs']}  "
              f"{body['mean_pipeline_seconds']:.0f} s/run")
    return report


if __name__ == "__main__":
    main()
