"""Generated tables that look like real exports, for tests and benchmarks (seeded; nothing downloaded).

Each generator returns a DataFrame with ``id``, ``label`` (text class names), ``split`` ("train" /
"test", stratified 80/20) and feature columns: numbers on very different scales, text categories
(one of them high-cardinality), booleans, missing values (some completely at random, some that
depend on the class: "informative"), and imbalanced classes. The classes are ordered (a latent risk
or severity score cut at quantiles), so "adjacent" classes are the confusable ones, and
:func:`plant_adjacent_flips` moves a fraction of the training labels to a neighbouring class.

    table = loan_applications(rows=3000, seed=0)
    noisy, flipped_ids = plant_adjacent_flips(table, fraction=0.1, seed=0, order=CLASS_ORDER["loans"])
    noisy.to_parquet("loans.parquet")   # python -m flows.pipeline data=parquet data.path=loans.parquet
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CLASS_ORDER = {
    "loans": ["approve", "review", "reject"],
    "triage": ["routine", "standard", "urgent", "emergency"],
}


def _zscore(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / values.std()


def _classes(risk: np.ndarray, shares: list[float], names: list[str]) -> np.ndarray:
    """Cut the latent `risk` (N,) at quantiles so the classes get `shares` of the rows, lowest first."""
    edges = np.quantile(risk, np.cumsum(shares)[:-1])
    return np.asarray(names, dtype=object)[np.searchsorted(edges, risk)]


def _zipf_choice(rng: np.random.Generator, names: list[str], size: int, exponent: float = 1.1) -> np.ndarray:
    """`size` draws from `names` with Zipf-like frequencies (a few common values, a long tail)."""
    weights = 1.0 / np.arange(1, len(names) + 1) ** exponent
    return rng.choice(np.asarray(names, dtype=object), size=size, p=weights / weights.sum())


def _blank(rng: np.random.Generator, column: pd.Series, probability: np.ndarray | float) -> pd.Series:
    """`column` with cells set missing with `probability` (scalar: MCAR; (N,) array: informative)."""
    hide = rng.random(len(column)) < probability
    return column.mask(hide, None if column.dtype == object else np.nan)


def _finish(frame: pd.DataFrame, prefix: str, names: list[str], rng: np.random.Generator, test_fraction: float = 0.2) -> pd.DataFrame:
    """Add ids and a stratified split, and put ``id``, ``label``, ``split`` first."""
    split = np.full(len(frame), "train", dtype=object)
    for name in names:
        rows = np.flatnonzero(frame["label"].to_numpy() == name)
        split[rng.permutation(rows)[: int(round(test_fraction * len(rows)))]] = "test"
    frame.insert(0, "split", split)
    frame.insert(0, "label", frame.pop("label"))
    frame.insert(0, "id", [f"{prefix}-{i:05d}" for i in range(len(frame))])
    return frame


def loan_applications(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Loan decisions (approve 60% / review 25% / reject 15%) from income (about 1e4-1e5), loan amount,
    credit score (300-850), debt ratio (0-1), age, late payments, employment (5 values), region
    (120 values, a long tail: the high-cardinality column) and a mortgage flag. Missing: income 5% and
    debt ratio 3% at random, mortgage flag 4% at random; credit score (thin files) and employment
    more often for risky applicants."""
    rng = np.random.default_rng(seed)
    income = np.round(np.exp(rng.normal(10.8, 0.5, rows)), -2)
    loan = np.round(np.exp(rng.normal(9.6, 0.7, rows)), -2)
    credit = np.clip(np.round(rng.normal(680, 70, rows)), 300, 850)
    debt = rng.beta(2, 5, rows)
    age = rng.integers(18, 76, rows)
    employment = rng.choice(np.array(["salaried", "self-employed", "unemployed", "retired", "student"], dtype=object), rows, p=[0.55, 0.15, 0.08, 0.12, 0.10])
    regions = [f"R{k:03d}" for k in range(120)]
    region = _zipf_choice(rng, regions, rows)
    region_risk = dict(zip(regions, rng.normal(0, 0.5, len(regions))))
    mortgage = rng.random(rows) < 0.35
    late = rng.poisson(np.exp(0.3 * rng.normal(size=rows) - 0.5 + 0.8 * debt))
    employment_risk = pd.Series(employment).map({"salaried": -0.3, "self-employed": 0.0, "unemployed": 1.0, "retired": -0.1, "student": 0.5}).to_numpy()
    risk = (-1.2 * _zscore(credit) + 0.9 * _zscore(debt) - 0.6 * _zscore(np.log(income)) + 0.6 * _zscore(np.log(loan / income))
            + 0.35 * late + employment_risk + pd.Series(region).map(region_risk).to_numpy() - 0.2 * mortgage + rng.normal(0, 0.5, rows))
    names = CLASS_ORDER["loans"]
    label = _classes(risk, [0.60, 0.25, 0.15], names)
    risky = (label != "approve").astype(float)
    frame = pd.DataFrame({
        "income": _blank(rng, pd.Series(income), 0.05),
        "loan_amount": pd.Series(loan),
        "credit_score": _blank(rng, pd.Series(credit), 0.03 + 0.15 * (label == "reject")),
        "debt_ratio": _blank(rng, pd.Series(debt), 0.03),
        "age": pd.Series(age, dtype=np.int64),
        "late_payments": pd.Series(late, dtype=np.int64),
        "employment": _blank(rng, pd.Series(employment, dtype=object), 0.02 + 0.08 * risky),
        "region": pd.Series(region, dtype=object),
        "has_mortgage": _blank(rng, pd.Series(mortgage, dtype=object), 0.04),
        "label": label,
    })
    return _finish(frame, "loan", names, rng)


def triage_visits(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Emergency-department triage (routine 50% / standard 30% / urgent 14% / emergency 6%) from vital
    signs on their own scales (heart rate, systolic pressure, temperature, oxygen saturation), age, wait
    minutes (0-600), lactate (about 1), white cell count (about 7,000), arrival mode (4 values),
    hospital site (8), chief complaint (80 codes: high-cardinality, each with its own severity) and two
    booleans. Missing: temperature 8% and site 2% at random; oxygen saturation more often for routine
    visits; lactate and white cells mostly measured in severe ones."""
    rng = np.random.default_rng(seed)
    complaints = [f"C{k:02d}" for k in range(80)]
    complaint = _zipf_choice(rng, complaints, rows, exponent=0.9)
    complaint_severity = dict(zip(complaints, rng.normal(0, 0.7, len(complaints))))
    hidden = rng.normal(size=rows) + pd.Series(complaint).map(complaint_severity).to_numpy()
    age = np.clip(np.round(rng.normal(50, 20, rows)), 0, 99)
    heart = np.round(80 + 12 * hidden + rng.normal(0, 10, rows))
    systolic = np.round(125 - 8 * hidden + 0.3 * (age - 50) + rng.normal(0, 15, rows))
    temperature = np.round(37.0 + 0.4 * np.maximum(hidden, 0) + rng.normal(0, 0.4, rows), 1)
    oxygen = np.clip(np.round(97 - 1.5 * np.maximum(hidden, 0) + rng.normal(0, 1.2, rows)), 70, 100)
    lactate = np.round(np.exp(0.3 + 0.35 * hidden + rng.normal(0, 0.3, rows)), 2)
    white_cells = np.round(np.exp(rng.normal(8.9, 0.3, rows) + 0.15 * hidden), -1)  # per microlitre
    arrival = np.where(hidden + rng.normal(0, 1, rows) > 1.2, "ambulance", rng.choice(np.array(["walk-in", "referral", "transfer"], dtype=object), rows, p=[0.7, 0.2, 0.1])).astype(object)
    site = rng.choice(np.array([f"site-{k}" for k in range(8)], dtype=object), rows)
    smoker = rng.random(rows) < 0.2
    diabetic = rng.random(rows) < 0.12 + 0.002 * age
    wait = np.round(rng.exponential(90, rows) * np.exp(-0.3 * hidden))
    severity = hidden + 0.015 * (age - 50) + 0.4 * diabetic + 0.2 * smoker + 0.6 * (arrival == "ambulance") + rng.normal(0, 0.4, rows)
    names = CLASS_ORDER["triage"]
    label = _classes(severity, [0.50, 0.30, 0.14, 0.06], names)
    severe = np.isin(label, ["urgent", "emergency"])
    frame = pd.DataFrame({
        "age": pd.Series(age),
        "heart_rate": pd.Series(heart),
        "systolic_bp": pd.Series(systolic),
        "temperature": _blank(rng, pd.Series(temperature), 0.08),
        "oxygen_saturation": _blank(rng, pd.Series(oxygen), 0.02 + 0.15 * (label == "routine")),
        "lactate": _blank(rng, pd.Series(lactate), np.where(severe, 0.2, 0.8)),
        "white_cell_count": _blank(rng, pd.Series(white_cells), np.where(severe, 0.1, 0.4)),
        "wait_minutes": pd.Series(wait),
        "arrival_mode": pd.Series(arrival, dtype=object),
        "site": _blank(rng, pd.Series(site, dtype=object), 0.02),
        "chief_complaint": pd.Series(complaint, dtype=object),
        "is_smoker": pd.Series(smoker, dtype=bool),
        "has_diabetes": pd.Series(diabetic, dtype=bool),
        "label": label,
    })
    return _finish(frame, "visit", names, rng)


TABLES = {"loans": loan_applications, "triage": triage_visits}


def plant_adjacent_flips(table: pd.DataFrame, fraction: float = 0.1, seed: int = 0, order: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Move `fraction` of the training rows' labels to an adjacent class of `order` (a random neighbour:
    either side for middle classes), as a tired annotator confuses neighbouring grades.

    `table` has ``id``, ``label`` and ``split`` columns; `order` defaults to the sorted labels. Returns a
    copy with the new labels and the ids of the changed rows (sorted). Test rows are never changed.
    """
    order = list(order or sorted(table["label"].unique()))
    rng = np.random.default_rng(seed)
    train = np.flatnonzero(table["split"].to_numpy() == "train")
    chosen = np.sort(rng.choice(train, size=int(round(fraction * len(train))), replace=False))
    position = pd.Series(table["label"].to_numpy()[chosen]).map({name: k for k, name in enumerate(order)}).to_numpy()
    step = np.where(rng.random(len(chosen)) < 0.5, -1, 1)
    step[position == 0], step[position == len(order) - 1] = 1, -1
    noisy = table.copy()
    noisy.loc[noisy.index[chosen], "label"] = np.asarray(order, dtype=object)[position + step]
    return noisy, table["id"].to_numpy()[chosen].tolist()
