"""The report as a review tool, end to end: a pipeline run on images whose class names include an XSS
payload; the generated report.html driven in headless Chromium (no request leaves the page, the queue
shows its rows with pictures, the payload shows as text, two rows marked and exported as
decisions.csv); then a second run that applies those decisions and says so in its report."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from flows import cli
from flows.pipeline import pipeline_flow
from flows.report import report_flow

HOSTILE = "<img src=x onerror=alert(1)>"
CLASSES = ["cat", HOSTILE, "dog"]
QUEUE = 8
NOTE = 'blurry, "unreadable"'
SCREENSHOTS = os.environ.get("EXEMPLAR_SCREENSHOT_DIR")  # keep the screenshot somewhere (CI artifact)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def images(path: Path, per_class: int = 30, seed: int = 0) -> Path:
    """Three classes of 8x8 grey images (a bright row, column or diagonal, plus noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, name in enumerate(CLASSES):
        for i in range(per_class):
            pixels = rng.integers(0, 60, size=(8, 8)).astype(np.uint8)
            pattern = [np.s_[3, :], np.s_[:, 3], (np.arange(8), np.arange(8))][k]
            pixels[pattern] = 220
            rows.append({"id": f"img-{k}{i:03d}", "label": name, "image": png(pixels)})
    pd.DataFrame(rows).to_parquet(path)
    return path


def overrides(data: Path, out_dir: Path, *extra: str) -> list[str]:
    return ["data=parquet", f"data.path={data}", f"out_dir={out_dir}", "train=fast", "train.population=1",
            "compress.sparsities=[0.9]", "compress.quantization=[]", "compress.finetune_epochs=1",
            f"report.queue_size={QUEUE}", "report.top_k=4", *extra]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    return images(tmp_path_factory.mktemp("data") / "hostile.parquet")


@pytest.fixture(scope="module")
def first_run(prefect_server, data_file, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("first")
    pipeline_flow(cli.load_config(overrides(data_file, run_dir)), str(run_dir))
    return run_dir


def marked(first_run: Path) -> tuple[dict, dict]:
    """The two training rows the reviewer marks: the top one relabelled, the second removed."""
    queue = [r for r in json.loads((first_run / "report.json").read_text())["review_queue"] if r["split"] == "train"]
    relabel, remove = queue[0], queue[1]
    relabel["target"] = next(c for c in (HOSTILE, "cat") if c != relabel["label_name"])
    return relabel, remove


def expected_csv(relabel: dict, remove: dict) -> str:
    note = '"' + NOTE.replace('"', '""') + '"'
    return f"id,action,new_label,note\r\n{relabel['id']},relabel,{relabel['target']},\r\n{remove['id']},remove,,{note}\r\n"


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium driven by Playwright. Outside CI a missing browser skips with the
    reason; in CI (.ci/run installs chromium) it fails."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if not executable:
        message = "headless chromium + playwright are needed: apt-get install -y chromium; pip install playwright"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


def test_reviewer_marks_two_rows_and_exports_decisions(first_run, browser, tmp_path):
    page = browser.new_page(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    url = (first_run / "report.html").resolve().as_uri()
    requests, dialogs = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    report = json.loads((first_run / "report.json").read_text())
    n_train = sum(r["split"] == "train" for r in report["review_queue"])
    visible = page.locator("tr.qrow:visible")
    assert n_train == QUEUE and visible.count() == QUEUE
    assert page.locator("tr.qrow:visible img.thumb[src^='data:image/png;base64,']").count() == QUEUE
    # the hostile class name is text: an option, a cell, never an element
    assert HOSTILE in page.locator("#filter-class option").all_inner_texts()
    assert page.locator("img[src='x']").count() == 0 and not dialogs
    page.select_option("#filter-class", HOSTILE)
    assert all(label == HOSTILE for label in page.locator("tr.qrow:visible").evaluate_all("rows => rows.map(r => r.dataset.label)"))
    page.select_option("#filter-class", "")
    relabel, remove = marked(first_run)
    row = page.locator(f"tr.qrow[data-id='{relabel['id']}']")
    row.locator("select.action").select_option("relabel")
    row.locator("select.new-label").select_option(relabel["target"])
    row = page.locator(f"tr.qrow[data-id='{remove['id']}']")
    row.locator("select.action").select_option("remove")
    row.locator("input.note").fill(NOTE)
    assert page.inner_text("#decided-count") == "2"
    with page.expect_download() as download:
        page.click("#export-decisions")
    saved = tmp_path / "decisions.csv"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "decisions.csv"
    assert saved.read_bytes().decode("utf-8") == expected_csv(relabel, remove)
    with page.expect_download() as tasks:
        page.click("#export-labelstudio")
    exported = json.loads(Path(tasks.value.path()).read_text())
    assert len(exported) == len(report["review_queue"]) and exported[0]["data"]["exemplar_id"] == report["review_queue"][0]["id"]
    assert 0 < exported[0]["predictions"][0]["score"] <= 1
    page.click(".tabs button[data-split='test']")
    assert page.locator("tr.qrow:visible").count() == sum(r["split"] == "test" for r in report["review_queue"])
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    if SCREENSHOTS:
        shutil.copy(shot, Path(SCREENSHOTS) / "report-browser-test.png")
    assert all(u == url or u.startswith(("data:", "blob:")) for u in requests), [u for u in requests if not u.startswith(("data:", "blob:"))]
    page.close()


def test_atypical_order_shows_its_own_rows_in_its_own_order(first_run, browser, tmp_path):
    """The "Atypical inputs" order: the training rows of report.json's atypical_queue, in atypical_rank
    order; a row marked there keeps its mark in the audit order and is exported with the others."""
    page = browser.new_page(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page.goto((first_run / "report.html").resolve().as_uri())
    report = json.loads((first_run / "report.json").read_text())
    atypical = [r for r in report["atypical_queue"] if r["split"] == "train"]
    assert [r["atypical_rank"] for r in atypical] == sorted(r["atypical_rank"] for r in atypical) and len(atypical) == QUEUE
    visible_ids = "rows => rows.map(r => r.dataset.id)"
    audit_order = page.locator("tr.qrow:visible").evaluate_all(visible_ids)
    page.click(".orders button[data-queue='atypical']")
    assert page.locator("tr.qrow:visible").evaluate_all(visible_ids) == [r["id"] for r in atypical]
    last = atypical[-1]  # marked in the atypical order
    page.locator(f"tr.qrow[data-id='{last['id']}'] select.action").select_option("remove")
    with page.expect_download() as sheet:
        page.click("#export-sheet")
    lines = Path(sheet.value.path()).read_text().splitlines()
    assert lines[0].startswith("rank,atypical_rank,id,") and len(lines) == 1 + len(report["atypical_queue"])
    page.click(".orders button[data-queue='audit']")
    assert page.locator("tr.qrow:visible").evaluate_all(visible_ids) == audit_order
    assert page.inner_text("#decided-count") == "1"
    with page.expect_download() as download:
        page.click("#export-decisions")
    assert Path(download.value.path()).read_bytes().decode("utf-8") == f"id,action,new_label,note\r\n{last['id']},remove,,\r\n"
    page.close()


def test_decisions_relabel_and_remove_rows_in_the_next_run(first_run, data_file, tmp_path):
    relabel, remove = marked(first_run)
    decisions = tmp_path / "decisions.csv"
    decisions.write_text(expected_csv(relabel, remove))
    run_dir = tmp_path / "second"
    pipeline_flow(cli.load_config(overrides(data_file, run_dir, f"decisions={decisions}", f"report.previous_scores={first_run / 'scores.parquet'}")), str(run_dir))
    dataset = pd.read_parquet(run_dir / "dataset.parquet").set_index("id")
    assert dataset.at[relabel["id"], "label_name"] == relabel["target"]
    keep = pd.read_parquet(run_dir / "keep.parquet").set_index("id")
    assert not keep.at[remove["id"], "keep"] and keep.at[remove["id"], "drop_reason"] == "reviewer_removed"
    ingest = json.loads((run_dir / "stages" / "ingest.json").read_text())
    assert ingest["decisions"]["relabelled"] == 1 and ingest["decisions"]["remove"] == 1
    assert json.loads((run_dir / "stages" / "filter.json").read_text())["reviewer_removed"] == 1
    changes = json.loads((run_dir / "report.json").read_text())["changes"]
    assert changes["decisions"]["labels_changed"] == 1 and changes["decisions"]["rows_removed"] == 1
    assert changes["ranks"]["compared"] >= len(dataset) - 1  # every row with a rank in both runs
    html = (run_dir / "report.html").read_text()
    assert "<b>1 label(s) changed</b> and <b>1 row(s) removed</b>" in html
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
    assert any(a.key == "exemplar-report" and "Reviewer decisions applied: 1 relabelled, 1 removed." in str(a.data) for a in artifacts)
    assert any(a.key == "exemplar-review-queue" for a in artifacts)


def test_a_rerun_with_the_same_settings_redoes_the_report_alone(first_run, data_file, tmp_path):
    """Every stage before the report is complete with these settings and inputs, so none is redone: the
    population's training used to resume at its last epoch and rewrite its summary, which made the score
    and compress stages (TracIn, the compressed population) run again."""
    run_dir = tmp_path / "again"
    shutil.copytree(first_run, run_dir)
    before = {p.name: p.read_bytes() for p in (run_dir / "stages").glob("*.json") if p.stem != "report"}
    pipeline_flow(cli.load_config(overrides(data_file, run_dir)), str(run_dir))
    assert {p.name: p.read_bytes() for p in (run_dir / "stages").glob("*.json") if p.stem != "report"} == before
    queues = [[(r["id"], r["audit_rank"]) for r in json.loads((d / "report.json").read_text())["review_queue"]] for d in (first_run, run_dir)]
    assert queues[0] == queues[1]


def test_the_report_stage_alone_reruns_with_another_fusion_recipe(first_run, data_file, tmp_path):
    """`report.fusion` reaches audit_score: `python -m flows.report --params <run>/settings.yaml` on a copy of the
    run, with the embedding distance put back and another method, fuses with that recipe, orders the atypical inputs by it too, says
    so in report.json and on the page, and leaves every signal column as it was."""
    run_dir = tmp_path / "rerun"
    shutil.copytree(first_run, run_dir)
    cli.prepare_run_dir(cli.load_config(overrides(data_file, run_dir)), run_dir, whole_run=True)  # what the run's command leaves
    recipe = ["report.fusion.exclude=[]", "report.fusion.method=family_z_mean", "report.fusion.balance=skill", "report.fusion.label=members"]
    report_flow(cli.load_config(["--params", str(run_dir / "settings.yaml"), *recipe]), str(run_dir))  # the run's settings in one argument
    fusion = json.loads((run_dir / "report.json").read_text())["fusion"]
    assert fusion["changed"] == {"method": "family_z_mean", "exclude": [], "balance": "skill", "label": "members"}
    assert set(fusion["model_shares"]) == {"train", "test"} and sum(fusion["model_shares"]["train"].values()) == pytest.approx(1.0)
    assert "outlier_score" in fusion["fused_columns"] and fusion["atypical_columns"] == ["outlier_score", "input_outlier_score"]
    assert json.loads((first_run / "report.json").read_text())["fusion"]["atypical_columns"] == ["input_outlier_score"]
    before, after = (pd.read_parquet(d / "scores.parquet").set_index("id").sort_index() for d in (first_run, run_dir))
    signals = [c for c in before.columns if c.endswith("_score") and c != "audit_score"]
    pd.testing.assert_frame_equal(before[signals], after[signals])
    assert not np.allclose(before["audit_score"], after["audit_score"])
    assert not before["atypical_rank"].equals(after["atypical_rank"])
    page = (run_dir / "report.html").read_text()
    assert "report.fusion.method=family_z_mean, report.fusion.exclude=[], report.fusion.balance=skill, report.fusion.label=members" in page
    assert "train rows: network " in page and "cross-fitted learner" in page


def test_bad_decisions_stop_the_run_with_one_paragraph(prefect_server, data_file, tmp_path, capsys):
    malformed = tmp_path / "bad.csv"
    malformed.write_text("id,verdict\nimg-0000,remove\n")
    out_dir = tmp_path / "out"
    assert cli.run_stage("ingest", lambda cfg, run_dir: pytest.fail("ran"), overrides(data_file, out_dir, f"decisions={malformed}")) == 2
    assert "no column(s) ['action']" in " ".join(capsys.readouterr().err.split())
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("id,action,new_label\nimg-0000,relabel,cat\nnope-1,remove,\n")
    from flows.ingest import ingest_flow

    assert cli.run_stage("ingest", ingest_flow, overrides(data_file, out_dir, f"decisions={unknown}")) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'nope-1'" in err and "Fix:" in err
    assert not out_dir.exists()
