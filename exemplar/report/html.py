"""The self-contained HTML page: Jinja2 templates (autoescaping on) shipped in ``templates/``, pictures
as inline PNG data URIs, the review script inline. A Content-Security-Policy allows nothing but inline
styles, inline scripts and data: images, so the page cannot make a network request."""

from __future__ import annotations

import math
from functools import lru_cache

from jinja2 import ChainableUndefined, Environment, PackageLoader
from markupsafe import Markup


SHOWN_TEXT = 80  # characters of a text cell shown in a table (report.json keeps it whole)


def fmt(value: object) -> str:
    """Numbers to 4 significant digits; None and NaN as 'n/a'; text past :data:`SHOWN_TEXT` characters cut with '…'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= SHOWN_TEXT else text[: SHOWN_TEXT - 1] + "…"


def pct(value: object) -> str:
    """A fraction in [0, 1] as a percentage ('n/a' when missing)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{100 * float(value):.1f}%"


def topfmt(value: float) -> str:
    """'top 0.25%' style: more decimals for the very top."""
    return f"{value:.2f}" if value < 1 else f"{value:.1f}" if value < 10 else f"{value:.0f}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("exemplar.report", "templates"), autoescape=True, undefined=ChainableUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(fmt=fmt, pct=pct, topfmt=topfmt)
    return env


def _asset(name: str) -> Markup:
    """A static file from templates/, inlined verbatim (not parsed as a template)."""
    source, _, _ = environment().loader.get_source(environment(), name)
    return Markup(source)


def queue_union(report: dict) -> list[dict]:
    """The rows of the page's one queue table: the audit queue's rows, then the rows only the
    atypical-inputs queue holds, each marked with the queues it belongs to (``queues``: a space-separated
    list, the script shows one queue at a time, in its own order; a row in both carries one decision)."""
    atypical = {row["id"] for row in report.get("atypical_queue", [])}
    audit = {row["id"] for row in report["review_queue"]}
    rows = [{**row, "queues": "audit atypical" if row["id"] in atypical else "audit"} for row in report["review_queue"]]
    return rows + [{**row, "queues": "atypical"} for row in report.get("atypical_queue", []) if row["id"] not in audit]


def page_data(report: dict, modality: str) -> dict:
    """What the review script needs: each queue's rows (no pictures; it reads them from the page)."""
    return {"dataset_hash": str(report["dataset"].get("hash", "")), "modality": modality,
            "class_names": report["summary"]["class_names"], "queue": report["review_queue"],
            "atypical_queue": report.get("atypical_queue", [])}


def render_html(report: dict, figures: dict[str, str], thumbnails: dict[str, str], title: str = "exemplar data audit") -> str:
    """Render the report dict (see :func:`exemplar.report.summary.build_report`) into one HTML string
    with no external resources; `figures` and `thumbnails` map keys/ids to data URIs."""
    modality = str(report["dataset"].get("modality", "image" if thumbnails else "table"))
    rows = queue_union(report)
    features = {row["id"]: row["features"] for row in rows if row.get("features")}
    features.update(report.get("feature_cards", {}))
    reasons = sorted({row["reason"] for row in rows if row["reason"]})
    template = environment().get_template("report.html.j2")
    return template.render(
        report={"stages": {}, "compression": [], "compression_note": None, **report}, figures=figures, thumbs=thumbnails,
        features=features, reasons=reasons, modality=modality, title=title, queue_rows=rows,
        page_data=page_data(report, modality), css=_asset("report.css"), script=_asset("review.js"),
    )
