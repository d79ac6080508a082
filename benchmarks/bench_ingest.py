"""Ingest throughput (rows/s) and peak memory for large tabular files and an image folder
(writes benchmarks/results/ingest.json).

Each case runs the ingest stage's streaming path (``open_stream`` + a Parquet writer fed batch by
batch, as tasks/ingest.py does) in a fresh child process, and records wall time, user/system CPU
time, the peak RSS, and the RSS right after imports, so ``peak - baseline`` is the memory the
ingestion itself used. Running the tabular case at several sizes shows whether that memory grows
with the row count: ``memory_growth`` gives, per kind, the extra bytes per extra row between
consecutive sizes (CSV stops at ``--csv-max-rows``: 3M rows are 940 MB of text).

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 \
        .venv/bin/python benchmarks/bench_ingest.py [--rows 100000 1000000] [--csv-max-rows 1000000] [--images 10000] \
        [--kinds parquet csv image_folder] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import git_commit  # benchmarks/provenance.py (scripts run from benchmarks/)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FEATURES = 16
CLASSES = 10
CHUNK = 100_000


def make_parquet(path: Path, rows: int, seed: int = 0) -> Path:
    """`rows` rows of id, label (10 classes) and 16 float features in ONE row group (as pandas writes
    up to 1Mi rows): the hardest layout for streaming, since a reader cannot skip to the next group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    columns = {"id": pa.array([f"r{i:08d}" for i in range(rows)]), "label": pa.array(rng.integers(0, CLASSES, rows))}
    columns.update({f"f{j}": pa.array(rng.normal(size=rows)) for j in range(FEATURES)})
    pq.write_table(pa.table(columns), path, row_group_size=rows)
    return path


def make_csv(path: Path, parquet: Path) -> Path:
    """The same rows as CSV text."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with pacsv.CSVWriter(path, pq.read_schema(parquet)) as writer:
        for batch in pq.ParquetFile(parquet).iter_batches(batch_size=CHUNK):
            writer.write_batch(batch)
    return path


def make_images(root: Path, count: int, seed: int = 0) -> Path:
    """`count` random 32x32 RGB PNGs in root/<class>/<n>.png."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = root / f"class{i % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:06d}.png")
    return root


def peak_rss_kb() -> int:
    """VmHWM of this process (peak resident set, KB). Not ru_maxrss: on Linux that keeps the parent's
    peak across fork+exec, so a child started by a large parent would report the parent's memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_child(kind: str, path: Path, out: Path) -> dict:
    """Ingest in this process (the child) and return the measurements."""
    import pyarrow.parquet as pq

    from exemplar.data.config import DataConfig
    from exemplar.data.loaders import open_stream

    baseline_kb = peak_rss_kb()
    started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    stream = open_stream(DataConfig(kind=kind, path=str(path)))
    scanned = time.perf_counter()
    with pq.ParquetWriter(out, stream.schema) as writer:
        for table in stream.batches():
            writer.write_table(table)
    summary = stream.summary()
    seconds, end, peak_kb = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF), peak_rss_kb()
    return {
        "kind": kind, "rows": summary["rows_read"], "rows_ingested": summary["rows"], "quarantined": summary["quarantined"],
        "seconds": round(seconds, 2), "scan_seconds": round(scanned - started, 2),
        "rows_per_s": round(summary["rows_read"] / seconds), "user_cpu_s": round(end.ru_utime - cpu.ru_utime, 2),
        "system_cpu_s": round(end.ru_stime - cpu.ru_stime, 2), "baseline_rss_mb": round(baseline_kb / 1024, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1), "ingest_memory_mb": round((peak_kb - baseline_kb) / 1024, 1),
        "input_mb": round(_size(path) / 2**20, 1),
    }


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def measure(kind: str, path: Path, work: Path, repeats: int = 1) -> dict:
    """The run with the median ingest memory out of `repeats` fresh processes (peak RSS varies by about
    +-10 MB between identical runs), with every run's memory and time under ``runs``."""
    runs = [_run_once(kind, path, work) for _ in range(repeats)]
    result = sorted(runs, key=lambda r: r["ingest_memory_mb"])[len(runs) // 2]
    result["runs"] = [{"ingest_memory_mb": r["ingest_memory_mb"], "seconds": r["seconds"]} for r in runs]
    print(json.dumps(result), flush=True)
    return result


def _run_once(kind: str, path: Path, work: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), str(work / f"out-{kind}.parquet")],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000, 1_000_000, 3_000_000])
    parser.add_argument("--csv-max-rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per case; the median memory is reported")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--kinds", nargs="+", default=["parquet", "csv", "image_folder"])
    parser.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child[0], Path(args.child[1]), Path(args.child[2]))))
        return
    cases, load_before = [], [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as temp:
        work = Path(temp)
        for rows in args.rows if {"parquet", "csv"} & set(args.kinds) else []:
            parquet = make_parquet(work / f"t{rows}.parquet", rows)
            if "parquet" in args.kinds:
                cases.append(measure("parquet", parquet, work, args.repeats))
            if "csv" in args.kinds and rows <= args.csv_max_rows:
                cases.append(measure("csv", make_csv(work / f"t{rows}.csv", parquet), work, args.repeats))
        if "image_folder" in args.kinds:
            cases.append(measure("image_folder", make_images(work / "images", args.images), work, args.repeats))
    write_results(cases, load_before)


def memory_growth(cases: list[dict]) -> list[dict]:
    """Per kind and consecutive sizes: (median ingest memory difference) / (row difference), in bytes per row."""
    growth = []
    for kind in sorted({c["kind"] for c in cases}):
        sizes = sorted((c for c in cases if c["kind"] == kind), key=lambda c: c["rows"])
        for small, large in zip(sizes, sizes[1:]):
            extra = (large["ingest_memory_mb"] - small["ingest_memory_mb"]) * 2**20 / (large["rows"] - small["rows"])
            growth.append({"kind": kind, "from_rows": small["rows"], "to_rows": large["rows"], "bytes_per_extra_row": round(extra, 1)})
    return growth


def write_results(cases: list[dict], load_before: list[float]) -> None:
    allocator = {k: os.environ.get(k) for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    payload = {
        "command": "MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 .venv/bin/python " + " ".join(["benchmarks/bench_ingest.py", *sys.argv[1:]]),
        "git_commit": git_commit(),
        "what": "ingest stage streaming path (pass 1 scan + pass 2 decode/validate + Parquet write), fresh processes per case (median of --repeats by ingest memory)",
        "tabular_input": f"id, label ({CLASSES} classes), {FEATURES} float64 features; images: random 32x32 RGB PNG, {CLASSES} class folders",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(), "allocator": allocator},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cases": cases,
        "memory_growth": memory_growth(cases),
    }
    out = ROOT / "benchmarks" / "results" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
