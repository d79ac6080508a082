"""Speed of the scoring stage against floors measured in the same run (writes benchmarks/results/scoring.json).

Floors, each over K checkpoints at the chosen batch size: K forward passes; K input-gradient passes
(forward + backward to the input of the labelled logit, VoG's unavoidable cost); K forward+backward
passes (batched loss.backward to the parameters). Measured against them:

- ``fused``: every checkpoint-based score (loss, margin, EL2N, confidently wrong, last-layer TracIn
  self-influence, VoG) in one sweep -- goal <= 1.15x of K input-gradient passes, and <= 0.7x of
  Captum ``TracInCPFast`` self-influence followed by a batched VoG.
- ``tracin_all``: all-parameter TracIn (exact self-influence; with the projection kept for pairwise
  influence; Kronecker-factored (default) and vmap + dense Gaussian; self-influence from the
  projected norms, ``tracin_exact_norms: false``) -- goal <= 1.5x of K forward+backward passes and
  >= 2x faster than Captum ``TracInCP``.
- ``norms_quality``: flipped-label detection (bench_quality's label-noise scenario) by all-parameter
  self-influence from exact vs projected norms (trains the default digits model: minutes).
- peak memory of the fused sweep at N and 2N (separate processes), the allocator setting's effect,
  the batch size chosen by measurement, and the same on digits with its fixed overheads.

Wall, user and system CPU seconds are recorded for every measurement (the best of `--repeats`).

    .venv/bin/python benchmarks/bench_scoring.py [--n 1000] [--n-all 256] [--checkpoints 5]
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
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exemplar.models.factory import ModelConfig, build_classifier, classifier_from_checkpoint, model_meta  # noqa: E402
from exemplar.scoring.allocator import keep_freed_memory  # noqa: E402
from exemplar.scoring.audit import CheckpointRef, ScoringData, score_examples  # noqa: E402
from exemplar.scoring.config import ScoreConfig  # noqa: E402
from exemplar.scoring.gradients import GaussianProjector, gradient_sketch, iter_example_gradients  # noqa: E402
from exemplar.scoring.passes import fused_pass  # noqa: E402
from exemplar.scoring.tracin import LastLayerFeatures, self_influence  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scoring.json"
SECTIONS = ("fused", "tracin_all", "projection", "memory", "allocator", "digits", "norms_quality")
FUSED_SIGNALS = ["loss", "margin", "el2n", "confidently_wrong", "self_influence", "vog"]


def measure(fn, repeats: int) -> dict:
    """Best-of-`repeats` wall seconds, with the user and system CPU seconds of that repeat."""
    best = None
    for _ in range(repeats):
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        fn()
        wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
        sample = {"wall": wall, "user": after.ru_utime - before.ru_utime, "sys": after.ru_stime - before.ru_stime}
        best = sample if best is None or wall < best["wall"] else best
    return best


def setup(n: int, k: int, shape: tuple[int, ...], seed: int = 0) -> tuple[ScoringData, list[dict]]:
    """Synthetic inputs in [0, 1] and K checkpoints of the default classifier (independent inits)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *shape), generator=generator)
    y = torch.randint(0, 10, (n,), generator=generator)
    meta = model_meta(ModelConfig(), "image", shape, 10)
    states = []
    for i in range(k):
        torch.manual_seed(seed + i)
        model = build_classifier(ModelConfig(), "image", shape, 10, torch.full((shape[0], 1, 1), 0.5), torch.full((shape[0], 1, 1), 0.25))
        states.append({"model": model.state_dict(), "meta": meta, "lr": 0.1 / (i + 1), "epoch": i + 1})
    ids = np.array([f"x{i}" for i in range(n)], dtype=object)
    return ScoringData(ids, x, y, np.ones(n, dtype=bool)), states


def refs(states: list[dict]) -> list[CheckpointRef]:
    return [CheckpointRef(s["epoch"], lambda s=s: (classifier_from_checkpoint(s), s["lr"])) for s in states]


def floor_forward(models, data: ScoringData, batch: int) -> None:
    with torch.no_grad():
        for model in models:
            for b in range(0, len(data.x), batch):
                model(data.x[b : b + batch])


def floor_input_gradient(models, data: ScoringData, batch: int) -> None:
    for model in models:
        for b in range(0, len(data.x), batch):
            x = data.x[b : b + batch].clone().requires_grad_(True)
            torch.autograd.grad(model(x).gather(1, data.labels[b : b + batch, None]).sum(), x)


def floor_forward_backward(models, data: ScoringData, batch: int) -> None:
    for model in models:
        for b in range(0, len(data.x), batch):
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(data.x[b : b + batch]), data.labels[b : b + batch], reduction="sum").backward()


def eval_models(states: list[dict], trainable: bool) -> list[torch.nn.Module]:
    models = [classifier_from_checkpoint(s) for s in states]
    for model in models:
        for p in model.parameters():
            p.requires_grad_(trainable)
    return models


def floors(data: ScoringData, states: list[dict], batch: int, repeats: int) -> dict:
    frozen, trainable = eval_models(states, False), eval_models(states, True)
    return {
        "forward": measure(lambda: floor_forward(frozen, data, batch), repeats),
        "input_gradient": measure(lambda: floor_input_gradient(frozen, data, batch), repeats),
        "forward_backward": measure(lambda: floor_forward_backward(trainable, data, batch), repeats),
    }


def choose_batch(data: ScoringData, states: list[dict], batches: list[int], repeats: int) -> dict:
    """Input-gradient pass time of one checkpoint per batch size; the fastest is used."""
    model = eval_models(states[:1], False)
    timings = {b: measure(lambda b=b: floor_input_gradient(model, data, b), repeats) for b in batches}
    return {"timings": {str(b): t for b, t in timings.items()}, "chosen": min(timings, key=lambda b: timings[b]["wall"])}


def captum_fast(states: list[dict], data: ScoringData, batch: int, folder: Path):
    from captum.influence import TracInCPFast

    paths = []
    for s in states:
        paths.append(str(folder / f"c{s['epoch']}.pt"))
        torch.save({"model": s["model"], "lr": s["lr"]}, paths[-1])

    def load(model, path):
        checkpoint = torch.load(path, weights_only=True)
        model.load_state_dict(checkpoint["model"])
        return checkpoint["lr"]

    model = classifier_from_checkpoint(states[0])
    dataset = torch.utils.data.TensorDataset(data.x, data.labels)
    loss = torch.nn.CrossEntropyLoss(reduction="sum")
    return model, paths, load, dataset, loss, lambda: TracInCPFast(model, model.backbone.head, dataset, paths, load, loss_fn=loss, batch_size=batch)


def last_layer_no_bias(states: list[dict], data: ScoringData, batch: int) -> np.ndarray:
    """Our last-layer self-influence without the bias column (what TracInCPFast computes)."""
    features = []
    for s in states:
        out = fused_pass(classifier_from_checkpoint(s), data.x, None, batch)
        f = LastLayerFeatures.from_outputs(out.logits, out.embeddings, data.labels.numpy())
        features.append(LastLayerFeatures(f.errors, f.inputs[:, :-1]))
    return self_influence(features, [s["lr"] for s in states])


def fused_section(data: ScoringData, states: list[dict], batch: int, repeats: int, floor: dict, folder: Path) -> dict:
    config = ScoreConfig(signals=FUSED_SIGNALS, influence_top_k=0, batch_size=batch)
    holder = {}
    fused = measure(lambda: holder.update(r=score_examples(data, refs(states), config)), repeats)
    vog = measure(lambda: score_examples(data, refs(states), ScoreConfig(signals=["vog"], influence_top_k=0, batch_size=batch)), repeats)
    cpu = lambda t: t["user"] + t["sys"]  # noqa: E731
    section = {"fused": fused, "vog_only": vog, "fused_over_input_gradient_floor": fused["wall"] / floor["input_gradient"]["wall"],
               "fused_over_input_gradient_floor_cpu_time": cpu(fused) / cpu(floor["input_gradient"])}
    try:
        *_, make = captum_fast(states, data, batch, folder)
    except ImportError:
        return {**section, "captum": "not installed"}
    scores = {}
    captum = measure(lambda: scores.update(c=make().self_influence(show_progress=False).numpy()), repeats)
    ours = holder["r"].scores["self_influence_score"].to_numpy()
    section.update({
        "captum_tracincp_fast_self_influence": captum,
        "fused_over_captum_fast_plus_vog": fused["wall"] / (captum["wall"] + vog["wall"]),
        "fused_over_captum_fast_plus_vog_cpu_time": cpu(fused) / (cpu(captum) + cpu(vog)),
        "captum_fast_over_forward_floor": captum["wall"] / floor["forward"]["wall"],
        "corr_with_captum_including_bias": float(np.corrcoef(ours, scores["c"])[0, 1]),
        "max_rel_diff_with_captum_without_bias": float(np.max(np.abs(last_layer_no_bias(states, data, batch) - scores["c"]) / np.abs(scores["c"]))),
    })
    return section


def _cpu(t: dict) -> float:
    return t["user"] + t["sys"]


def projection_quality(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, dims: list[int]) -> list[dict]:
    """Pearson correlation of projected with exact gradient dot products (off-diagonal pairs, and the
    squared norms), Kronecker-factored vs a dense Gaussian projection of the same dimension."""
    exact = torch.cat(list(iter_example_gradients(model, x, y, None, 128, "vmap"))).double()
    off = ~np.eye(len(x), dtype=bool)
    truth = (exact @ exact.T).numpy()
    rows = []
    for dim in dims:
        _, kron = gradient_sketch(model, x, y, GaussianProjector(dim, 0), None, 128, True, "kronecker")
        dense = GaussianProjector(kron.shape[1], 0)(exact.float()).double().numpy()
        row = {"projection_dim": dim, "dim": int(kron.shape[1])}
        for name, g in (("kronecker", kron.astype(np.float64)), ("dense_gaussian", dense)):
            gram = g @ g.T
            row[f"{name}_pairwise"] = float(np.corrcoef(truth[off], gram[off])[0, 1])
            row[f"{name}_squared_norms"] = float(np.corrcoef(np.diag(truth), np.diag(gram))[0, 1])
        rows.append(row)
    return rows


def projection_section(args) -> dict:
    """Projection quality on a random-init checkpoint of the benchmark model and, with
    ``--quality-checkpoint`` (a trained digits checkpoint), on the first 256 digits."""
    data, states = setup(128, 1, (3, 32, 32))
    dims = [args.projection_dim, 4 * args.projection_dim]
    section = {"synthetic_random_init_128_rows": projection_quality(classifier_from_checkpoint(states[0]), data.x, data.labels, dims)}
    if args.quality_checkpoint:
        from exemplar.data.canonical import input_array
        from exemplar.data.digits import load_digits_dataset
        from exemplar.training.checkpoints import load_checkpoint

        dataset = load_digits_dataset()
        x, y = torch.tensor(input_array(dataset)[:256]), torch.tensor(dataset.table["label"].to_numpy()[:256])
        trained = classifier_from_checkpoint(load_checkpoint(args.quality_checkpoint))
        section["digits_trained_256_rows"] = {"checkpoint": str(args.quality_checkpoint), "rows": projection_quality(trained, x, y, dims)}
    return section


def tracin_all_section(data: ScoringData, states: list[dict], batch: int, repeats: int, args, folder: Path) -> dict:
    floor = floors(data, states, batch, repeats)["forward_backward"]
    base = {"signals": ["self_influence"], "tracin_scope": "all", "batch_size": batch, "gradient_chunk": args.chunk,
            "projection_dim": args.projection_dim}
    variants = {  # name -> config: exact self-influence (top-k off) or with the projection kept for top-k
        "exact_kronecker": ScoreConfig(**base, influence_top_k=0, gradient_method="kronecker"),
        "projected_kronecker": ScoreConfig(**base, influence_top_k=1, gradient_method="kronecker"),
        "exact_vmap": ScoreConfig(**base, influence_top_k=0, gradient_method="vmap"),
        "projected_dense_vmap": ScoreConfig(**base, influence_top_k=1, gradient_method="vmap"),
        "projected_norms_kronecker": ScoreConfig(**base, influence_top_k=0, gradient_method="kronecker", tracin_exact_norms=False),
        "projected_norms_kronecker_topk": ScoreConfig(**base, influence_top_k=1, gradient_method="kronecker", tracin_exact_norms=False),
    }
    results, timings, tracin = {}, {}, {name: [] for name in variants}
    for name, config in variants.items():
        def run(c=config, n=name):
            results[n] = score_examples(data, refs(states), c)
            tracin[n].append(results[n].summary["seconds"])
        timings[name] = measure(run, repeats)
    for name, seconds in tracin.items():  # the per-example-gradient work alone, and the fused passes the sweep still runs
        timings[name]["tracin_seconds_best"] = min(s["tracin"] for s in seconds)
        timings[name]["fused_pass_seconds_best"] = min(s.get("fused_pass", 0.0) for s in seconds)
    exact = results["exact_vmap"].scores["self_influence_score"].to_numpy()
    section = {
        "n": len(data.x), "projection_dim": args.projection_dim, "chunk": args.chunk, "forward_backward_floor": floor, "timings": timings,
        "over_floor_wall": {k: t["wall"] / floor["wall"] for k, t in timings.items()},
        "over_floor_cpu": {k: _cpu(t) / _cpu(floor) for k, t in timings.items()},
        "tracin_part_over_floor_wall": {k: t["tracin_seconds_best"] / floor["wall"] for k, t in timings.items()},
        "self_influence_max_rel_diff_kronecker_vs_vmap": float(np.max(np.abs(results["exact_kronecker"].scores["self_influence_score"].to_numpy() - exact) / exact)),
        "self_influence_corr_projected_norms_vs_exact": float(np.corrcoef(results["projected_norms_kronecker"].scores["self_influence_score"], exact)[0, 1]),
    }
    try:
        from captum.influence import TracInCP

        model, paths, load, dataset, _, _ = captum_fast(states, data, batch, folder)
    except ImportError:
        return {**section, "captum": "not installed"}
    loss = torch.nn.CrossEntropyLoss(reduction="sum")
    theirs = {}
    make = lambda: TracInCP(model, dataset, paths, load, loss_fn=loss, batch_size=batch, sample_wise_grads_per_batch=True)  # noqa: E731
    captum = measure(lambda: theirs.update(c=make().self_influence(show_progress=False).numpy()), 1)
    section.update({"captum_tracincp_self_influence": captum,
                    "captum_over_ours_wall": {k: captum["wall"] / t["wall"] for k, t in timings.items()},
                    "captum_over_ours_cpu": {k: _cpu(captum) / _cpu(t) for k, t in timings.items()},
                    "max_rel_diff_with_captum": float(np.max(np.abs(exact - theirs["c"]) / np.abs(theirs["c"])))})
    return section


def flipped_digits(seed: int) -> tuple[np.ndarray, torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """(ids, inputs (N, 1, 8, 8), labels (N,), is_train (N,), is_flipped (N,)): the embedded digits with 10 %
    of the training labels flipped to another class."""
    from exemplar.data.canonical import input_array
    from exemplar.data.digits import load_digits_dataset
    from exemplar.scoring.quality import flip_labels

    dataset = load_digits_dataset()
    labels = dataset.table["label"].to_numpy(dtype=np.int64, copy=True)
    is_train = (dataset.table["split"] == "train").to_numpy()
    labels, positive = flip_labels(labels, np.flatnonzero(is_train), 0.10, 10, seed)
    images = torch.from_numpy(np.ascontiguousarray(input_array(dataset), dtype=np.float32))
    return dataset.table["id"].to_numpy(dtype=object), images, labels, is_train, positive


def norms_quality_section(args) -> dict:
    """Does self-influence from the projected norms ||Pg||^2 (``score.tracin_exact_norms: false``) find
    flipped labels as well as the exact norms? The label-noise scenario of benchmarks/bench_quality.py
    (digits, 10% of training labels flipped, seed 0, the default training), all-parameter TracIn."""
    from exemplar.scoring.quality import detection_metrics
    from exemplar.training.config import TrainConfig

    from exemplar.pruning.proxy import ProxyData, train_proxy

    ids, x, labels, is_train, positive = flipped_digits(seed=0)
    y = torch.from_numpy(labels)
    train = ProxyData(ids[is_train], x[is_train], y[is_train], "image", tuple(x.shape[1:]), int(y.max()) + 1)
    checkpoints = train_proxy(train, ModelConfig(), TrainConfig()).checkpoints  # every epoch's weights, in memory
    data, section = ScoringData(ids, x, y, is_train), {"scenario": "label_noise", "projection_dim": args.projection_dim}
    variants = {"last_layer": {"tracin_scope": "last_layer"}, "all_exact_norms": {"tracin_scope": "all"},
                "all_projected_norms": {"tracin_scope": "all", "tracin_exact_norms": False}}
    scores = {}
    for name, changes in variants.items():
        config = ScoreConfig(signals=["self_influence"], influence_top_k=0, projection_dim=args.projection_dim, **changes)
        timing = measure(lambda c=config, n=name: scores.update({n: score_examples(data, checkpoints, c).scores["self_influence_score"].to_numpy()}), 1)
        section[name] = {"seconds": timing, **detection_metrics(positive[is_train], scores[name][is_train])}
    exact, projected = scores["all_exact_norms"][is_train], scores["all_projected_norms"][is_train]
    section["pearson_projected_vs_exact"] = float(np.corrcoef(projected, exact)[0, 1])
    section["spearman_projected_vs_exact"] = float(np.corrcoef(np.argsort(np.argsort(projected)), np.argsort(np.argsort(exact)))[0, 1])
    return section


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def probe(n: int, k: int, batch: int, allocator: bool) -> dict:
    """Peak memory and CPU time of one fused sweep over n synthetic 3x32x32 images (run in a fresh process)."""
    applied = keep_freed_memory() if allocator else False
    data, states = setup(n, k, (3, 32, 32))
    before = peak_rss_mib()
    config = ScoreConfig(signals=FUSED_SIGNALS, influence_top_k=0, batch_size=batch)
    timing = measure(lambda: score_examples(data, refs(states), config), 1)
    return {"n": n, "allocator_applied": applied, "sweep": timing, "peak_rss_mib_before_sweep": before,
            "peak_rss_mib_after_sweep": peak_rss_mib(), "input_mib": data.x.numel() * 4 / 2**20,
            "vog_accumulator_mib": 2 * n * 32 * 32 * 8 / 2**20}


def probe_in_subprocess(n: int, k: int, batch: int, allocator: bool = True) -> dict:
    command = [sys.executable, __file__, "--probe", str(n), "--checkpoints", str(k), "--batch", str(batch)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    if not allocator:
        command.append("--no-allocator")
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(output.strip().splitlines()[-1])


def digits_section(repeats: int, folder: Path) -> dict:
    """The same fused sweep on digits (1,797 8x8 images, K=10 as the default training saves), plus
    the fixed costs around it: loading checkpoints from disk and importing Prefect."""
    from exemplar.data.canonical import input_array
    from exemplar.data.digits import load_digits_dataset
    from exemplar.training.checkpoints import load_checkpoint

    dataset = load_digits_dataset()
    data, states = setup(len(dataset.table), 10, (1, 8, 8))
    data = ScoringData(data.ids, torch.from_numpy(input_array(dataset)), torch.from_numpy(dataset.table["label"].to_numpy()), data.is_train)
    batch = 1024
    floor = floors(data, states, batch, repeats)
    section = {"n": len(data.x), "checkpoints": 10, "batch": batch, "floors": floor, **fused_section(data, states, batch, repeats, floor, folder)}
    paths = [folder / f"d{i}.pt" for i in range(len(states))]
    for path, state in zip(paths, states):
        torch.save(state, path)
    section["load_10_checkpoints"] = measure(lambda: [load_checkpoint(p) for p in paths], repeats)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import prefect"], check=True)
    section["import_prefect_seconds"] = time.perf_counter() - started
    return section


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="synthetic 3x32x32 images for the fused sweep")
    parser.add_argument("--n-all", type=int, default=256, help="images for all-parameter TracIn and Captum TracInCP")
    parser.add_argument("--checkpoints", type=int, default=5)
    parser.add_argument("--batch", type=int, default=0, help="fix the batch size (0: choose among --batches by measurement)")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--chunk", type=int, default=128, help="rows per per-example-gradient chunk (score.gradient_chunk)")
    parser.add_argument("--projection-dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quality-checkpoint", type=Path, default=None, help="a trained digits checkpoint for the projection section")
    parser.add_argument("--no-digits", action="store_true")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS),
                        help="run only these sections and update them in an existing --out file")
    parser.add_argument("--probe", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--no-allocator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def run_sections(args, report: dict) -> None:
    data, states = setup(args.n, args.checkpoints, (3, 32, 32))
    choice = choose_batch(data, states, args.batches, args.repeats) if not args.batch else {"chosen": args.batch}
    batch = report.setdefault("batch_size", choice)["chosen"] if "fused" not in args.sections else choice["chosen"]
    with tempfile.TemporaryDirectory() as folder:
        if "fused" in args.sections:
            report["batch_size"] = choice
            report["floors"] = floors(data, states, batch, args.repeats)
            report["fused"] = fused_section(data, states, batch, args.repeats, report["floors"], Path(folder))
        if "tracin_all" in args.sections:
            small, small_states = setup(args.n_all, args.checkpoints, (3, 32, 32))
            report["tracin_all"] = tracin_all_section(small, small_states, batch, args.repeats, args, Path(folder))
        if "projection" in args.sections:
            report["projection_quality"] = projection_section(args)
        if "memory" in args.sections:
            report["memory"] = [probe_in_subprocess(n, args.checkpoints, batch) for n in (args.n, 2 * args.n)]
        if "allocator" in args.sections:
            report["allocator_effect"] = {"with_keep_freed_memory": probe_in_subprocess(args.n, args.checkpoints, batch, True),
                                          "glibc_defaults": probe_in_subprocess(args.n, args.checkpoints, batch, False)}
        if "digits" in args.sections:
            report["digits"] = digits_section(args.repeats, Path(folder))
        if "norms_quality" in args.sections:
            report["tracin_norms_quality"] = norms_quality_section(args)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    torch.set_num_threads(2)
    if args.probe:
        print(json.dumps(probe(args.probe, args.checkpoints, args.batch or 256, not args.no_allocator)))
        return {}
    allocator = keep_freed_memory()
    partial = set(args.sections) != set(SECTIONS) and args.out.exists()
    report = json.loads(args.out.read_text()) if partial else {}
    command = "python benchmarks/bench_scoring.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = {
        "command": command,
        "git_commit": git_commit(),
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "allocator": {"keep_freed_memory_applied": allocator,
                      "env": {k: os.environ.get(k) for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}},
        "sizes": {"n": args.n, "image": [3, 32, 32], "checkpoints": args.checkpoints, "n_all_parameter": args.n_all,
                  "model": "SmallCNN widths [32, 64], hidden 128, 10 classes (the default image model)"},
    }
    if partial:  # a rerun of some sections keeps the full run's header and records its own beside it
        report.pop(f"command[{' '.join(args.sections)}]", None)
        report[f"run[{' '.join(args.sections)}]"] = header
    else:
        report.update(header)
    run_sections(args, report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    return report


if __name__ == "__main__":
    result = main()
    if result:
        print(json.dumps({k: result[k] for k in ("batch_size", "floors", "fused", "tracin_all", "memory", "allocator_effect") if k in result}, indent=1, default=float))
