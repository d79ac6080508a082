"""Report size and build time against the number of images (writes benchmarks/results/report.json).

A synthetic run of N random 32x32 RGB images in 10 classes, with every default signal as random
scores, 20 epochs of dynamics for 5 seeds and 5 compression levels, rendered by the report library
exactly as the report task does (content, figures, thumbnails for the shown rows, HTML). The claim
checked: a 50,000-image report stays under 20 MB because only shown rows get thumbnails.

    .venv/bin/python benchmarks/bench_report.py [rows ...]      # default: 2000 50000
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exemplar.data.canonical import Dataset, DatasetInfo, image_table  # noqa: E402
from exemplar.report.assemble import assemble_scores, thumbnails, training_curves  # noqa: E402
from exemplar.report.classes import class_accuracy  # noqa: E402
from exemplar.report.config import ReportConfig  # noqa: E402
from exemplar.report.figures import report_figures  # noqa: E402
from exemplar.report.html import render_html  # noqa: E402
from exemplar.report.summary import ReportInputs, build_report, shown_ids  # noqa: E402

CLASSES = [f"class-{k}" for k in range(10)]
SIGNALS = ["loss", "margin", "el2n", "grand", "confidently_wrong", "self_influence", "vog", "forgetting",
           "low_confidence", "variability", "outlier", "input_outlier"]
LEVELS = ["p30", "p50", "p70", "p90", "int8_dynamic"]


def synthetic(rows: int, seed: int = 0) -> ReportInputs:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 10, rows)
    splits = np.where(rng.random(rows) < 0.8, "train", "test").tolist()
    pixels = rng.integers(0, 256, size=(rows, 3, 32, 32), dtype=np.uint8)
    ids = [f"img-{i:06d}" for i in range(rows)]
    dataset = Dataset(image_table(ids, codes, CLASSES, splits, pixels), DatasetInfo("image", CLASSES, image_shape=[3, 32, 32], source="synthetic"))
    keep = pd.DataFrame({"id": ids, "keep": True, "drop_reason": ""})
    signals = pd.DataFrame({"id": ids, "pred": np.where(rng.random(rows) < 0.9, codes, rng.integers(0, 10, rows)),
                            **{f"{s}_score": rng.gamma(2.0, 1.0, rows) for s in SIGNALS}})
    cie = pd.DataFrame({"id": ids, **{f"is_cie_{t}": rng.random(rows) < 0.02 for t in LEVELS}})
    for t in LEVELS:
        cie[f"cie_score_{t}"] = cie[f"is_cie_{t}"].astype(float) * rng.random(rows)
    cie["cie_score"] = cie[[f"cie_score_{t}" for t in LEVELS]].max(axis=1)
    scores = assemble_scores(dataset, keep, [signals, cie])
    train_ids = np.array(ids)[np.array(splits) == "train"]
    curves = training_curves({s: [pd.DataFrame({"id": train_ids, "epoch": e, "correct": rng.random(len(train_ids)) < e / 21,
                                                "label_probability": rng.random(len(train_ids))}) for e in range(1, 21)] for s in range(5)})
    models = pd.DataFrame([{"level": lvl, "seed": s, **{f"class_accuracy_{k}": rng.random() for k in range(10)}} for lvl in ["dense", *LEVELS] for s in range(5)])
    inputs = ReportInputs(scores=scores, dataset={"source": "synthetic", "hash": "0" * 32, "modality": "image"}, metrics={"test_accuracy": 0.9},
                          class_names=CLASSES, models=models, curves=curves)
    return inputs, dataset


def measure(rows: int) -> dict:
    inputs, dataset = synthetic(rows)
    config = ReportConfig()
    started = time.perf_counter()
    content = build_report(inputs, config.top_k, config.queue_size, config.why_top_percent)
    built = time.perf_counter()
    figures = report_figures(inputs.scores, content, inputs.curves, class_accuracy(inputs.models, CLASSES), None)
    drawn = time.perf_counter()
    thumbs = thumbnails(dataset, shown_ids(content), config.thumbnail_pixels)
    html = render_html(content, figures, thumbs)
    done = time.perf_counter()
    return {"rows": rows, "html_bytes": len(html.encode()), "json_bytes": len(json.dumps(content, default=str).encode()),
            "thumbnails": len(thumbs), "figures": len(figures), "content_s": round(built - started, 2),
            "figures_s": round(drawn - built, 2), "thumbnails_and_html_s": round(done - drawn, 2), "loadavg": os.getloadavg()}


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [2000, 50000]
    cases = []
    for rows in sizes:
        cases.append(measure(rows))
        print(json.dumps(cases[-1]), flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    payload = {"command": ".venv/bin/python " + " ".join(["benchmarks/bench_report.py", *sys.argv[1:]]), "git_commit": commit,
               "what": "report.html size and build time (default report settings) against the number of images; synthetic scores",
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cases": cases}
    out = ROOT / "benchmarks" / "results" / "report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
