"""Operating speed, one run side by side: the whole pipeline as `make run` runs it, `dvc repro` of the
same default configuration in a temporary clone, and how long a config error takes to be reported.

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 OMP_WAIT_POLICY=PASSIVE \
        .venv/bin/python benchmarks/bench_pipeline.py [--overrides train.population=1] [--skip run dvc error] [--without-speedups]

Writes benchmarks/results/pipeline.json: per measurement the exact command, wall time, the CPU time of
the processes it ran (user and system), and the 1-minute load average before and after (the machine is
shared: other work changes the figures), plus the git commit. Everything runs under a fresh temporary
folder (MLflow store, Prefect home, DVC clone), so nothing here touches the project's own state.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from flows import prefect_seed  # noqa: E402  (standard library only)

RESULTS = ROOT / "benchmarks" / "results" / "pipeline.json"
COPIED = ["conf", "flows", "tasks", "exemplar", "dvc.yaml", "params.yaml", ".dvc/config", ".dvcignore"]


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def timed(command: list[str], cwd: Path, env: dict, expect: int = 0) -> dict:
    """Run `command`; wall and children's CPU seconds, load average around it, the tail of its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != expect:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return {
        "command": " ".join(command), "cwd": str(cwd), "wall_seconds": round(wall, 2),
        "user_seconds": round(after.ru_utime - before.ru_utime, 2), "system_seconds": round(after.ru_stime - before.ru_stime, 2),
        "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
        "output_lines": len((done.stdout + done.stderr).splitlines()), "output_tail": (done.stdout + done.stderr)[-600:],
    }


def environment(scratch: Path) -> dict:
    """Quiet, offline, and isolated: own MLflow store and Prefect home under `scratch`."""
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
            "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}", "PREFECT_HOME": str(scratch / "prefect"),
            "PYTHONWARNINGS": "ignore"}


def clone(scratch: Path, overrides: list[str]) -> Path:
    """The project's sources in a fresh git repository (with params.yaml composed with `overrides`)."""
    root = scratch / "clone"
    for name in COPIED:
        source, target = ROOT / name, root / name
        if not source.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__")) if source.is_dir() else shutil.copy(source, target)
    if overrides:
        subprocess.run([sys.executable, "-m", "flows.params", *overrides, "--out", str(root / "params.yaml")], cwd=ROOT, check=True,
                       capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "bench"]):
        subprocess.run(command, cwd=root, check=True)
    return root


def warm_stage_runs(project: Path) -> list[str]:
    """The stages `dvc repro` ran in its warm stage host (flows/warm_stages.py), from the host's log."""
    log = project / ".prefect" / "repro-servers" / "stages.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split()[2] for line in lines if line.split()[1:2] == ["ran"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overrides", nargs="*", default=[], help="Hydra overrides for both runs (default: none)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["run", "dvc", "error"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--without-speedups", action="store_true",
                        help="also time both again with EXEMPLAR_PREFECT_SEED=0 EXEMPLAR_WARM_STAGES=0 (no seeded Prefect "
                             "database, every DVC stage in its own fresh process)")
    parser.add_argument("--per-stage-servers", action="store_true",
                        help="also time `dvc repro --force` with EXEMPLAR_SHARED_PREFECT=0 (a temporary Prefect server per stage)")
    args = parser.parse_args(argv)
    results = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "git_commit": git_commit(), "cpu_count": os.cpu_count(),
               "overrides": args.overrides, "load_average_start": [round(x, 2) for x in os.getloadavg()],
               "malloc_env_set": "MALLOC_MMAP_THRESHOLD_" in os.environ, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as temp:
        scratch = Path(temp)
        env = environment(scratch)
        if "error" not in args.skip:  # a typo in a key: answered before any flow starts
            results["config_error"] = timed([sys.executable, "-m", "flows.pipeline", "train.epochz=3"], ROOT, env, expect=2)
        if "run" not in args.skip:  # what `make run ARGS=...` runs after set-up
            results["make_run"] = timed([sys.executable, "-m", "flows.pipeline", f"out_dir={scratch / 'run'}", *args.overrides], ROOT, env)
        if "dvc" not in args.skip:
            project = clone(scratch, args.overrides)
            results["dvc_repro"] = timed(["dvc", "repro"], project, {**env, "PREFECT_HOME": str(project / ".prefect")})
            results["dvc_repro_noop"] = timed(["dvc", "repro"], project, {**env, "PREFECT_HOME": str(project / ".prefect")})
            if args.per_stage_servers:
                results["dvc_repro_per_stage_servers"] = timed(["dvc", "repro", "--force"], project, {
                    **env, "PREFECT_HOME": str(project / ".prefect"), "EXEMPLAR_SHARED_PREFECT": "0"})
                results["dvc_repro_shared_server"] = timed(["dvc", "repro", "--force"], project, {**env, "PREFECT_HOME": str(project / ".prefect")})
            results["dvc_stages_in_warm_host"] = warm_stage_runs(project)
            if args.without_speedups:
                plain = {**env, "EXEMPLAR_PREFECT_SEED": "0", "EXEMPLAR_WARM_STAGES": "0"}
                results["make_run_without_speedups"] = timed([sys.executable, "-m", "flows.pipeline", f"out_dir={scratch / 'run-plain'}",
                                                              *args.overrides], ROOT, {**plain, "PREFECT_HOME": str(scratch / "prefect-plain")})
                other = clone(scratch / "plain", args.overrides)
                results["dvc_repro_without_speedups"] = timed(["dvc", "repro"], other, {**plain, "PREFECT_HOME": str(other / ".prefect")})
    results["prefect_seed_ready"] = prefect_seed._usable(prefect_seed.SEED_DIR)
    if "make_run" in results and "dvc_repro" in results:
        results["dvc_over_make_run"] = round(results["dvc_repro"]["wall_seconds"] / results["make_run"]["wall_seconds"], 3)
    if "make_run_without_speedups" in results:
        results["dvc_over_make_run_without_speedups"] = round(
            results["dvc_repro_without_speedups"]["wall_seconds"] / results["make_run_without_speedups"]["wall_seconds"], 3)
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: (v["wall_seconds"] if isinstance(v, dict) else v) for k, v in results.items() if k != "command"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
