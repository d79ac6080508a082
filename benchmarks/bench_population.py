"""Wall and CPU time of the train stage and of the whole pipeline, before and after the vectorised
population, side by side in one session (so both see the same machine load).

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 OMP_WAIT_POLICY=PASSIVE \\
        .venv/bin/python benchmarks/bench_population.py [--before GIT_REV] [--repeats 1]

"before" is the source tree of GIT_REV (default: the commit before the population work) exported
with ``git archive`` into a temporary folder and run with the same interpreter; "after" is this
working tree. Each variant runs ``python -m flows.ingest``, ``flows.filter`` and ``flows.train``
(the train stage timed alone), then ``python -m flows.pipeline`` into a fresh folder, each in a fresh
process (Prefect start-up included). Writes benchmarks/results/population.json with the commands,
commits, CPU times of the child processes and the load average before and after each run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import git_commit  # benchmarks/provenance.py (scripts run from benchmarks/)

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "population.json"
BEFORE = "af6ab99"


def timed(args: list[str], cwd: Path, env: dict) -> dict:
    """Run a command; wall seconds, child user+system CPU seconds, load average before and after."""
    before, load = resource.getrusage(resource.RUSAGE_CHILDREN), os.getloadavg()
    started = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_seconds": round(wall, 2), "cpu_seconds": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2),
            "load_before": [round(x, 2) for x in load], "load_after": [round(x, 2) for x in os.getloadavg()]}


def variant(source: Path, scratch: Path, env: dict) -> dict:
    env = {**env, "PYTHONPATH": str(source), "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}"}
    python = [sys.executable, "-m"]
    stages = scratch / "stages"
    for stage in ("ingest", "filter"):
        timed([*python, f"flows.{stage}", f"out_dir={stages}"], source, env)
    train = timed([*python, "flows.train", f"out_dir={stages}"], source, env)
    pipeline = timed([*python, "flows.pipeline", f"out_dir={scratch / 'pipeline'}"], source, env)
    metrics = json.loads((scratch / "pipeline" / "metrics.json").read_text())["headline"]
    headline = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and (k.startswith(("cie_", "test_accuracy")) or k == "population")}
    return {"train_stage": train, "pipeline": pipeline, "headline": headline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=BEFORE)
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bench-population-") as folder:
        scratch = Path(folder)
        before_src = scratch / "before-src"
        before_src.mkdir()
        archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before_src)], input=archive, check=True)
        results = {"before": variant(before_src, scratch / "before", env), "after": variant(ROOT, scratch / "after", env)}
    ratio = {key: round(results["after"][key]["wall_seconds"] / results["before"][key]["wall_seconds"], 3) for key in ("train_stage", "pipeline")}
    cpu_ratio = {key: round(results["after"][key]["cpu_seconds"] / results["before"][key]["cpu_seconds"], 3) for key in ("train_stage", "pipeline")}
    after = git_commit()
    result = {
        "command": "MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_population.py "
                   + " ".join(sys.argv[1:]),
        "git_commit": after, "before_commit": git_commit(args.before), "after_commit": after.removesuffix("+dirty"),
        "after_dirty": after.endswith("+dirty"), "cpu_count": os.cpu_count(),
        "settings": "default configuration (digits; before: 5 seeds one after another; after: 5 seeds as one ensemble + 8 cross-fitted models, 2 folds x 4 repeats)",
        "wall_ratio_after_over_before": ratio, "cpu_ratio_after_over_before": cpu_ratio, **results,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
