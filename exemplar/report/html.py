"""A self-contained HTML audit report: inline CSS, thumbnails as base64 PNG, all text escaped."""

from __future__ import annotations

import json
from html import escape

from exemplar.report.signals import describe

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d1d1f;max-width:1200px}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
.sub{color:#666;margin-top:0} table{border-collapse:collapse;font-size:.9rem}
td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:left;vertical-align:middle}
th{background:#f6f6f6} .num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:.6rem} .card{border:1px solid #ddd;border-radius:6px;padding:.4rem;width:120px;font-size:.75rem}
.card img{width:112px;height:112px;image-rendering:pixelated;display:block;background:#000}
.bad{color:#b00020;font-weight:600} code{background:#f3f3f3;padding:0 .2rem}
.wide{overflow-x:auto} details{margin:.4rem 0} summary{cursor:pointer;font-weight:600} details table{margin:.3rem 0 .3rem 1rem}
"""


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "n/a"
    return str(value)


def _table(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td class='num'>{escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _card(entry: dict, value_key: str, thumbnails: dict[str, str]) -> str:
    uri = thumbnails.get(entry["id"])
    image = f"<img alt='{escape(entry['id'])}' src='{escape(uri)}'>" if uri else ""
    wrong = " class='bad'" if entry["pred"] != entry["label"] else ""
    return (
        f"<div class='card'>{image}<div><b>{escape(entry['id'])}</b> ({escape(entry['split'])})</div>"
        f"<div>label: {escape(entry['label_name'])}</div><div{wrong}>pred: {escape(entry['pred_name'])}</div>"
        f"<div>{escape(value_key)}: {escape(_fmt(entry.get(value_key)))}</div></div>"
    )


def _queue_table(queue: list[dict], signals: list[str], thumbnails: dict[str, str]) -> str:
    head = "".join(f"<th>{escape(s)}</th>" for s in ["rank", "", "id", "split", "label", "pred", "audit_score", *signals])
    rows = []
    for entry in queue:
        uri = thumbnails.get(entry["id"])
        image = f"<img alt='' width='40' height='40' style='image-rendering:pixelated' src='{escape(uri)}'>" if uri else ""
        cells = [entry["audit_rank"], image, entry["id"], entry["split"], entry["label_name"], entry["pred_name"],
                 entry["audit_score"], *[entry.get(s) for s in signals]]
        wrong = entry["pred"] != entry["label"]
        rows.append("<tr>" + "".join(
            f"<td>{c}</td>" if i == 1 else f"<td{' class=bad' if wrong and i == 5 else ''}>{escape(_fmt(c))}</td>"
            for i, c in enumerate(cells)
        ) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _nested(value: object, depth: int = 0) -> str:
    """Render nested dicts/lists of scalars as nested tables (long lists are cut at 20 items)."""
    if isinstance(value, dict):
        rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{_nested(v, depth + 1)}</td></tr>" for k, v in value.items())
        return f"<table>{rows}</table>"
    if isinstance(value, list):
        shown = ", ".join(escape(_fmt(v)) if not isinstance(v, (dict, list)) else _nested(v, depth + 1) for v in value[:20])
        return shown + (f" &hellip; ({len(value)} in all)" if len(value) > 20 else "")
    return escape(_fmt(value))


def _stage_sections(stages: dict) -> str:
    blocks = "".join(
        f"<details><summary>{escape(name)}</summary>{_nested(metrics)}</details>" for name, metrics in stages.items()
    )
    return f"<h2>Stage details</h2>{blocks}" if blocks else ""


def _compression_section(rows: list[dict], note: str | None) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{escape(_fmt(v))}</td>" for v in row.values()) + "</tr>" for row in rows)
    remark = f"<p>{escape(note)}</p>" if note else ""
    return (
        "<h2>Compression</h2><p>Compression Identified Exemplars (CIE) are examples where the compressed and dense "
        f"model populations disagree (Hooker et al. 2019).</p>{remark}<table><tr>{head}</tr>{body}</table>"
    )


def _thumb(example_id: str, thumbnails: dict[str, str], caption: str) -> str:
    uri = thumbnails.get(example_id)
    image = f"<img alt='' src='{escape(uri)}'>" if uri else ""
    return f"<div class='card'>{image}<div><b>{escape(example_id)}</b></div><div>{escape(caption)}</div></div>"


def _influence_section(neighbours: list[dict], thumbnails: dict[str, str]) -> str:
    if not neighbours:
        return ""
    blocks = []
    for entry in neighbours:
        cards = [_thumb(entry["test_id"], thumbnails, "test example")]
        for kind in ("proponent", "opponent"):
            cards += [_thumb(n["id"], thumbnails, f"{kind} {_fmt(n['influence'])}") for n in entry[kind]]
        blocks.append(f"<div class='grid'>{''.join(cards)}</div>")
    variant = escape(neighbours[0]["variant"])
    return (
        "<h2>Proponents and opponents</h2><p>For the test examples highest in the review queue: the training examples "
        f"that most helped (proponents) and most hurt (opponents) their prediction, by TracIn ({variant}).</p>"
        + "<hr>".join(blocks)
    )


def render_html(report: dict, thumbnails: dict[str, str], title: str = "exemplar data audit") -> str:
    """Render the report dict (see :func:`build_report`) into one HTML string with no external resources."""
    dataset, metrics = report["dataset"], report["metrics"]
    sections = [
        f"<h1>{escape(title)}</h1>",
        f"<p class='sub'>{escape(str(dataset.get('source', '')))} &middot; dataset hash "
        f"<code>{escape(str(dataset.get('hash', '')))}</code></p>",
        "<h2>Headline</h2>", _table(sorted((str(k), v) for k, v in metrics.items() if not isinstance(v, (dict, list)))),
        "<h2>Review queue</h2><p>Ordered by <code>audit_rank</code>, the fused <code>audit_score</code> over every "
        "signal below (method: docs/scoring.md, section Fusion). Predictions in red disagree with the given label.</p>",
        f"<div class='wide'>{_queue_table(report['review_queue'], report['signals'], thumbnails)}</div>",
    ]
    sections.append(_compression_section(report.get("compression", []), report.get("compression_note")))
    sections.append(_influence_section(report.get("influence", []), thumbnails))
    for column, entries in report["top_by_signal"].items():
        cards = "".join(_card(e, column, thumbnails) for e in entries)
        about = describe(column)
        sections.append(f"<h2>Top by {escape(column)}</h2><p>{escape(about)}</p><div class='grid'>{cards}</div>")
    sections.append(_stage_sections(report.get("stages", {})))
    sections.append("<h2>Machine-readable twin</h2><p>See <code>report.json</code> and <code>scores.parquet</code>.</p>")
    payload = escape(json.dumps(report["counts"]))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body data-counts='{payload}'>{''.join(sections)}</body></html>"
    )
