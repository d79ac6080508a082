"""Training speed: the small CNN on digits (20 epochs, default config; goal < 10 s on 2 CPU cores) and
ResNet-18 (CIFAR variant) training throughput on synthetic 32x32 RGB batches, on CPU and, when one is
visible, on the GPU.

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 \
        .venv/bin/python benchmarks/bench_training.py [--threads 2] [--resnet-rows 512]

Writes benchmarks/results/training.json (with this command, wall and CPU times and the load average:
on a shared machine, other processes' load changes the figures). On a busy machine OpenMP threads
that spin while waiting slow torch down many times over; ``OMP_WAIT_POLICY=PASSIVE`` avoids that.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

from provenance import git_commit  # benchmarks/provenance.py (scripts run from benchmarks/)
import torch

from exemplar.data.canonical import input_array
from exemplar.data.digits import load_digits_dataset
from exemplar.models.classifier import input_statistics
from exemplar.models.factory import ModelConfig, build_classifier
from exemplar.training.config import TrainConfig
from exemplar.training.loop import fit

RESULTS = Path(__file__).resolve().parent / "results" / "training.json"


def _cpu_seconds() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _timed(work) -> tuple[object, dict]:
    user, system = _cpu_seconds()
    started = time.perf_counter()
    result = work()
    wall = time.perf_counter() - started
    user_after, system_after = _cpu_seconds()
    return result, {"wall_seconds": round(wall, 3), "user_seconds": round(user_after - user, 3), "system_seconds": round(system_after - system, 3)}


def bench_digits(epochs: int, threads: int) -> dict:
    """The default pipeline configuration (model auto -> small CNN, train default) on the full digits split."""
    torch.set_num_threads(threads)
    dataset = load_digits_dataset()
    x = torch.from_numpy(input_array(dataset).copy())
    y = torch.from_numpy(dataset.table["label"].to_numpy(copy=True))
    is_train = torch.from_numpy((dataset.table["split"] == "train").to_numpy(copy=True))
    config = TrainConfig(epochs=epochs, device="cpu")
    torch.manual_seed(config.seed)
    model = build_classifier(ModelConfig(), "image", (1, 8, 8), 10, *input_statistics(x[is_train]))
    results, times = _timed(lambda: fit(model, x[is_train], y[is_train], config, test_x=x[~is_train], test_y=y[~is_train]))
    accuracy = round(results[-1].test_accuracy, 4)
    return {"torch_threads": threads, "epochs": epochs, "train_rows": int(is_train.sum()), "test_accuracy": accuracy, **times}


def bench_resnet(device: str, rows: int, batch_size: int, amp: bool = False) -> dict:
    """Training samples/s of ResNet-18 over `rows` synthetic (3, 32, 32) images, after one warm-up epoch."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(rows, 3, 32, 32, generator=generator)
    y = torch.randint(0, 10, (rows,), generator=generator)
    model = build_classifier(ModelConfig(name="resnet18"), "image", (3, 32, 32), 10, torch.zeros(3, 1, 1), torch.ones(3, 1, 1))
    config = TrainConfig(epochs=1, batch_size=batch_size, device=device, amp=amp, crop_padding=4, hflip=True)
    fit(model, x[: 2 * batch_size], y[: 2 * batch_size], config)  # warm-up (allocator, cuDNN autotuning)
    _, times = _timed(lambda: fit(model, x, y, config))  # fit ends by copying the weights back: synchronised
    return {"device": device, "amp": amp, "rows": rows, "batch_size": batch_size,
            "samples_per_second": round(rows / times["wall_seconds"], 1), **times}


def _command() -> str:
    """This invocation, with the environment settings that change the figures."""
    names = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "OMP_WAIT_POLICY", "OMP_NUM_THREADS")
    settings = [f"{name}={os.environ[name]}" for name in names if name in os.environ]
    return " ".join([*settings, "python", "benchmarks/bench_training.py", *sys.argv[1:]])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads for ResNet-18 (digits runs with 1 and this)")
    parser.add_argument("--digits-epochs", type=int, default=20)
    parser.add_argument("--resnet-rows", type=int, default=512)
    parser.add_argument("--resnet-batch", type=int, default=128)
    parser.add_argument("--gpu-rows", type=int, default=20480)
    args = parser.parse_args(argv)
    report = {
        "command": _command(),
        "git_commit": git_commit(),
        "torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "malloc_env_set": bool(os.environ.get("MALLOC_MMAP_THRESHOLD_")),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (active spinning)"),
        "digits_small_cnn": [bench_digits(args.digits_epochs, threads) for threads in sorted({1, args.threads})],
    }
    torch.set_num_threads(args.threads)
    report |= {
        "resnet18_cpu": {"torch_threads": args.threads, **bench_resnet("cpu", args.resnet_rows, args.resnet_batch)},
    }
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name()
        report["resnet18_cuda"] = bench_resnet("cuda", args.gpu_rows, 512)
        report["resnet18_cuda_amp"] = bench_resnet("cuda", args.gpu_rows, 512, amp=True)
    report["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return report


if __name__ == "__main__":
    result = main()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
