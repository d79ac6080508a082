"""The table encoding: fit on training rows only, deterministic, imputation with indicators, the
high-cardinality path, and columns that carry nothing (all-missing, constant) left out with a warning."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from exemplar.data.canonical import encode_table, input_array
from exemplar.data.columns import ColumnProfile, log_warnings, parse_dates, row_hashes, text_column_type, typed_column
from exemplar.data.encoding import EncodingConfig, encode_features
from exemplar.data.loaders import ingest_in_memory
from exemplar.errors import ExemplarError
from tests.unit.data.makers import config

TYPES = ["numeric", "numeric", "categorical", "categorical", "boolean"]


def mixed(rows: int = 60, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(features (rows, 5), labels (rows,) in 0..2, is_train (rows,)): numbers on scales 1e5 and 1,
    a 3-value colour with gaps, a 25-value city and a flag; the last quarter of the rows are test rows."""
    rng = np.random.default_rng(seed)
    features = pd.DataFrame({
        "income": rng.normal(50_000, 20_000, rows),
        "ratio": rng.normal(0.0, 1.0, rows),
        "colour": pd.Series(rng.choice(["red", "green", "blue"], rows), dtype=object),
        "city": pd.Series([f"city{k}" for k in rng.integers(0, 25, rows)], dtype=object),
        "flag": pd.Series(rng.random(rows) < 0.5, dtype=object),
    })
    features.loc[[2, 7], "income"] = np.nan
    features.loc[[3, rows - 10], "colour"] = None
    features.loc[5, "flag"] = None
    return features, np.arange(rows) % 3, np.arange(rows) < rows * 3 // 4


def encode(features, labels, is_train, **settings):
    return encode_features(features, TYPES[: features.shape[1]], labels, is_train, EncodingConfig(**settings))


def test_changing_test_rows_changes_no_other_row():
    features, labels, is_train = mixed()
    before = encode(features, labels, is_train, max_onehot_categories=5)
    changed = features.copy()
    test = np.flatnonzero(~is_train)
    changed.loc[test[0], ["income", "ratio", "colour", "city"]] = [1e12, -1e6, "purple", "nowhere"]
    changed.loc[test[1], ["income", "colour"]] = [np.nan, None]
    after = encode(changed, labels, is_train, max_onehot_categories=5)
    assert after.names == before.names
    untouched = np.ones(len(features), dtype=bool)
    untouched[test[:2]] = False
    np.testing.assert_array_equal(after.x[untouched], before.x[untouched])
    assert not np.array_equal(after.x[test[0]], before.x[test[0]])


def test_training_rows_are_standardised_and_the_test_rows_use_their_statistics():
    features, labels, is_train = mixed()
    encoded = encode(features, labels, is_train)
    income = encoded.names.index("numeric__income")
    filled = is_train & features["income"].notna().to_numpy()
    assert abs(encoded.x[filled, income].mean()) < 1e-5 and abs(encoded.x[filled, income].std() - 1) < 1e-4
    mean, std = features["income"][filled].mean(), features["income"][filled].std(ddof=0)
    test = np.flatnonzero(~is_train & features["income"].notna().to_numpy())
    np.testing.assert_allclose(encoded.x[test, income], (features["income"][test] - mean) / std, rtol=1e-4)


def test_missing_numbers_are_imputed_with_an_indicator():
    features, labels, is_train = mixed()
    encoded = encode(features, labels, is_train)
    income, flag = encoded.names.index("numeric__income"), encoded.names.index("numeric__missingindicator_income")
    assert np.isfinite(encoded.x).all()
    assert encoded.x[[2, 7], flag].tolist() == [1.0, 1.0] and encoded.x[:, flag].sum() == 2
    train_median = np.median(encoded.x[is_train & features["income"].notna().to_numpy(), income])
    np.testing.assert_allclose(encoded.x[[2, 7], income], train_median, rtol=1e-5)


def test_categories_are_one_hot_with_a_missing_column_and_unknown_values_are_zero():
    features, labels, is_train = mixed()
    features.loc[np.flatnonzero(~is_train)[0], "colour"] = "purple"  # never seen in training rows
    encoded = encode(features, labels, is_train)
    colour = [i for i, n in enumerate(encoded.names) if n.startswith("onehot__colour_")]
    assert sorted(encoded.names[i] for i in colour) == [f"onehot__colour_{v}" for v in ("(missing)", "blue", "green", "red")]
    assert encoded.x[3, colour].sum() == 1 and encoded.x[3, encoded.names.index("onehot__colour_(missing)")] == 1
    assert encoded.x[np.flatnonzero(~is_train)[0], colour].sum() == 0
    assert "onehot__flag_True" in encoded.names and "onehot__flag_(missing)" in encoded.names


@pytest.mark.parametrize(("high_cardinality", "width"), [("target", 3), ("infrequent", 5)])
def test_a_column_above_the_limit_gets_a_compact_encoding(high_cardinality, width):
    features, labels, is_train = mixed(rows=120)
    encoded = encode(features, labels, is_train, max_onehot_categories=5, high_cardinality=high_cardinality)
    assert encoded.plan.high == ["city"] and encoded.plan.onehot == ["colour", "flag"]
    city = [n for n in encoded.names if n.startswith("high__city")]
    assert len(city) == width  # target: one column per class; infrequent: the 4 most frequent + "infrequent"
    assert np.isfinite(encoded.x).all()


def test_target_encoding_of_training_rows_is_cross_fitted():
    """A category seen once in training: its fitted encoding would be pulled towards its own label;
    cross-fitted, the row's encoding is the prior of the other folds (no trace of its own label)."""
    features, labels, is_train = mixed(rows=120)
    features["city"] = np.where(np.arange(len(features)) % 2, "common", "usual")
    features.loc[0, "city"] = "rare"
    encoded = encode(features, labels, is_train, max_onehot_categories=2, high_cardinality="target")
    own = encoded.names.index(f"high__city_{labels[0]}")
    assert encoded.x[0, own] == pytest.approx(encoded.x[1:90][labels[1:90] == labels[0], own].mean(), abs=0.05)


def test_numeric_codes_can_be_treated_as_categories():
    features, labels, is_train = mixed()
    features["ratio"] = np.arange(len(features)) % 4 * 10.0
    encoded = encode(features, labels, is_train, categorical_columns=["ratio"])
    assert encoded.plan.numeric == ["income"] and "onehot__ratio_30" in encoded.names


def test_encoding_is_deterministic():
    features, labels, is_train = mixed(rows=120)
    first = encode(features, labels, is_train, max_onehot_categories=5)
    np.testing.assert_array_equal(first.x, encode(features.copy(), labels.copy(), is_train.copy(), max_onehot_categories=5).x)


def test_all_missing_and_constant_columns_are_left_out():
    features, labels, is_train = mixed()
    features["empty"] = np.nan
    features["same"] = 4.0
    features["same_or_missing"] = np.where(np.arange(len(features)) % 5 == 0, np.nan, 4.0)  # missingness is information
    encoded = encode_features(features, [*TYPES, "numeric", "numeric", "numeric"], labels, is_train, EncodingConfig())
    assert encoded.plan.dropped == {"empty": "all_missing", "same": "constant"}
    assert "numeric__missingindicator_same_or_missing" in encoded.names
    assert not any("empty" in n or n.endswith("__same") for n in encoded.names)


def test_no_usable_column_is_an_error_that_says_so():
    features = pd.DataFrame({"a": [1.0] * 6, "b": [np.nan] * 6})
    with pytest.raises(ExemplarError, match="no usable feature column"):
        encode_features(features, ["numeric", "numeric"], np.arange(6) % 2, np.ones(6, bool), EncodingConfig())


def test_profile_warns_over_training_rows_only():
    frame = pd.DataFrame({"a": [1.0, 1.0, 1.0, 2.0], "b": [None, None, None, "x"], "c": [1.0, 2.0, 3.0, 4.0]})
    profile = ColumnProfile(["a", "b", "c"]).update(frame.iloc[:2], np.array([True, True])).update(frame.iloc[2:], np.array([True, False]))
    assert profile.problems() == {"a": "constant", "b": "all_missing"}
    assert profile.missing == {"a": 0, "b": 3, "c": 0} and profile.rows_with_missing == 3


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_ingest_records_column_warnings_and_logs_them(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(30)], "label": np.arange(30) % 2, "x": rng.normal(size=30),
                          "notes": pd.Series([None] * 30, dtype=object), "version": 3})
    frame.to_parquet(tmp_path / "t.parquet")
    dataset, quarantine, summary = ingest_in_memory(config("parquet", tmp_path / "t.parquet"))
    assert len(quarantine) == 0 and len(dataset.table) == 30
    assert [(w["column"], w["problem"]) for w in summary["column_warnings"]] == [("notes", "all_missing"), ("version", "constant")]
    assert input_array(dataset).shape == (30, 1)
    records, logger = _Records(), logging.getLogger("exemplar.data")
    logger.addHandler(records)
    try:
        log_warnings(summary["column_warnings"], "t.parquet")
    finally:
        logger.removeHandler(records)
    text = "\n".join(records.messages)
    assert "column 'notes' is all-missing" in text and "column 'version' is constant" in text


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_text_boolean_and_missing_cells_survive_ingest_as_given(tmp_path, kind):
    features, labels, _ = mixed(rows=40)
    frame = pd.concat([pd.DataFrame({"id": [f"r{i:02d}" for i in range(40)], "label": labels}), features], axis=1)
    path = tmp_path / f"t.{kind}"
    frame.to_parquet(path) if kind == "parquet" else frame.to_csv(path, index=False)
    dataset, quarantine, summary = ingest_in_memory(config(kind, path))
    assert len(quarantine) == 0 and summary["rows_with_missing_values"] == 5
    assert dataset.info.column_types == TYPES
    stored = dataset.table.set_index("id")
    assert np.isnan(stored.loc["r02", "income"]) and pd.isna(stored.loc["r03", "colour"]) and pd.isna(stored.loc["r05", "flag"])
    assert stored.loc["r00", "city"] == frame.loc[0, "city"] and stored.loc["r00", "flag"] == frame.loc[0, "flag"]
    encoded = encode_table(dataset)
    assert encoded.x.shape[0] == 40 and np.isfinite(encoded.x).all()


def test_csv_column_types_from_text():
    assert text_column_type(pd.Series(["1", "2.5", "", "NA"])) == "numeric"
    assert text_column_type(pd.Series(["1", "2", "x"])) == "numeric"  # a stray word: missing, counted
    assert text_column_type(pd.Series(["True", "false", ""])) == "boolean"
    assert text_column_type(pd.Series(["a", "b", "3"])) == "categorical"
    assert typed_column(pd.Series(["yes", " ", "N/A", "no"]), "categorical").tolist() == ["yes", None, None, "no"]


def test_iso_dates_are_a_column_type_of_their_own():
    assert text_column_type(pd.Series(["2021-03-04", "2021-03-05 12:30", "", "2021-03-06T08:00:00+02:00"])) == "datetime"
    assert text_column_type(pd.Series(["2021-03-04", "2021-03-05", "unknown"])) == "datetime"  # a stray word: missing, counted
    assert text_column_type(pd.Series(["04/03/2021", "05/03/2021"])) == "categorical"  # day or month first? ambiguous: text
    assert text_column_type(pd.Series(["2021", "2022"])) == "numeric"  # a year is a number
    assert text_column_type(pd.Series(["a", "2021-03-04", "b"])) == "categorical"


def test_parse_dates_counts_days_since_1970_in_utc():
    cells = np.array(["1970-01-02", " 2024-01-02 ", "2024-01-02T12:00:00+02:00", "2024-01-02 06:00", None, "soon"], dtype=object)
    days = parse_dates(cells)
    assert days[:4].tolist() == [1.0, 19724.0, 19724.0 + 10 / 24, 19724.0 + 6 / 24]  # 2024-01-02 is day 19,724
    assert np.isnan(days[4:]).all()


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_dates_are_stored_as_given_and_encoded_as_scaled_days(tmp_path, kind):
    when = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-03", None, "2024-01-05"] * 5))
    frame = pd.DataFrame({"id": [f"r{i:02d}" for i in range(20)], "label": np.arange(20) % 2, "x": np.arange(20.0), "when": when,
                          "day": when.dt.date})
    path = tmp_path / f"t.{kind}"
    if kind == "csv":
        frame["when"] = frame["when"].dt.strftime("%Y-%m-%d").fillna("")
        frame.loc[7, "when"] = "last week"  # not a date: missing, counted
        frame = frame.drop(columns="day")
    frame.to_parquet(path) if kind == "parquet" else frame.to_csv(path, index=False)
    dataset, quarantine, summary = ingest_in_memory(config(kind, path))
    assert len(quarantine) == 0 and dataset.info.column_types[1:] == ["datetime"] * (2 if kind == "parquet" else 1)
    stored = dataset.table.set_index("id")["when"]
    assert stored["r01"] == "2024-01-03" and pd.isna(stored["r02"])  # the report shows the date as written
    if kind == "parquet":
        assert dataset.table.set_index("id").loc["r01", "day"] == "2024-01-03"
    if kind == "csv":
        assert stored["r07"] == "last week"
        assert ("when", "unparsed_cells") in [(w["column"], w["problem"]) for w in summary["column_warnings"]]
        assert "not ISO 8601 dates" in summary["column_warnings"][0]["detail"]
    encoded = encode_table(dataset)
    days = parse_dates(dataset.table["when"].to_numpy(dtype=object))
    is_train = (dataset.table["split"] == "train").to_numpy()
    filled = is_train & ~np.isnan(days)
    scaled = encoded.x[:, encoded.names.index("numeric__when")]
    expected = (days - days[filled].mean()) / days[filled].std()  # standardised on the training rows' days
    assert np.allclose(scaled[~np.isnan(days)], expected[~np.isnan(days)], atol=1e-5)
    assert "numeric__missingindicator_when" in encoded.names


def test_timestamps_are_stored_alike_whatever_their_batch():
    stamps = pd.Series(pd.to_datetime(["2024-01-03", "2024-01-03 12:30"], format="ISO8601"))
    together = typed_column(stamps, "datetime").tolist()
    alone = typed_column(stamps[:1], "datetime").tolist() + typed_column(stamps[1:], "datetime").tolist()
    assert together == alone == ["2024-01-03", "2024-01-03 12:30:00"]
    aware = typed_column(pd.Series(pd.to_datetime(["2024-01-03 00:00+02:00"])), "datetime").tolist()
    assert aware == ["2024-01-03 00:00:00+02:00"] and np.isclose(parse_dates(np.array(aware, dtype=object))[0], 19725.0 - 2 / 24)  # 2024-01-02 22:00 UTC


def test_gradient_boosting_reads_dates_as_days():
    from exemplar.data.encoding import native_frame

    features = pd.DataFrame({"when": pd.Series(["2024-01-02", None, "2024-01-04T12:00"], dtype=object), "x": [0.0, 1.0, 2.0]})
    frame = native_frame(features, ["datetime", "numeric"], np.ones(3, dtype=bool), EncodingConfig())
    assert frame["when"].dtype == np.float64 and np.isnan(frame["when"][1]) and frame["when"][[0, 2]].tolist() == [19724.0, 19726.5]


def test_a_datetime_column_can_be_read_as_categories():
    features = pd.DataFrame({"when": ["2024-01-01", "2024-01-02", "2024-01-01", "2024-01-02"], "x": [0.0, 1.0, 2.0, 3.0]})
    fit = np.ones(4, dtype=bool)
    encoded = encode_features(features, ["datetime", "numeric"], np.array([0, 1, 0, 1]), fit, EncodingConfig(categorical_columns=["when"]))
    assert "onehot__when_2024-01-01" in encoded.names


def test_equal_rows_hash_equal_with_missing_cells():
    frame = pd.DataFrame({"a": [1.0, np.nan, np.nan], "b": pd.Series(["x", None, None], dtype=object)})
    hashes = row_hashes(frame, ["numeric", "categorical"])
    assert hashes[1] == hashes[2] != hashes[0]
    numeric = pd.DataFrame({"a": [1.0, 2.0]})
    from exemplar.data.canonical import hash_bytes

    assert row_hashes(numeric, ["numeric"])[0] == hash_bytes(np.array([1.0]).tobytes())  # numeric tables hash as before


def test_native_frame_keeps_gaps_and_categories_for_gradient_boosting():
    from sklearn.ensemble import HistGradientBoostingClassifier

    from exemplar.data.encoding import native_frame

    features, labels, is_train = mixed()
    features["same"] = 1.0
    features.loc[np.flatnonzero(~is_train)[0], "city"] = "nowhere"
    frame = native_frame(features, [*TYPES, "numeric"], is_train, EncodingConfig())
    assert list(frame.columns) == ["income", "ratio", "colour", "city", "flag"]
    assert frame["income"].isna().sum() == 2 and frame["colour"].dtype == "category"
    assert pd.isna(frame.loc[np.flatnonzero(~is_train)[0], "city"])  # a value unseen in the fit rows
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype").fit(frame[is_train], labels[is_train])
    assert model.predict_proba(frame).shape == (len(frame), 3)


def test_input_outliers_are_measured_on_the_standardised_encoding(tmp_path):
    """One column in millions must not decide the input-space distance: a row that is extreme in a
    unit-scale column is the top input outlier on the encoding, and not on the raw values."""
    from exemplar.scoring.outlier import knn_distance

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": [f"r{i:03d}" for i in range(200)], "label": np.arange(200) % 2, "split": "train",
                          "salary": rng.normal(0, 1e6, 200), "ratio": rng.normal(0, 1, 200)})
    frame.loc[7, "ratio"] = 12.0
    frame.to_parquet(tmp_path / "t.parquet")
    dataset = ingest_in_memory(config("parquet", tmp_path / "t.parquet"))[0]
    is_train = np.ones(200, dtype=bool)
    assert np.argmax(knn_distance(input_array(dataset), is_train, 5)) == 7
    assert np.argmax(knn_distance(dataset.table[["salary", "ratio"]].to_numpy(), is_train, 5)) != 7


def _profile_by_columns(frame: pd.DataFrame, batches: list[np.ndarray], is_train: np.ndarray) -> tuple[dict, dict, int, list]:
    """Reference: the column profile computed one column at a time (the loop the profile replaced)."""
    from exemplar.data.columns import is_missing

    missing, filled, train_missing, first, varies, rows = {}, {}, {}, {}, {}, 0
    for rows_of in batches:
        part, train = frame.iloc[rows_of].reset_index(drop=True), is_train[rows_of]
        any_missing = np.zeros(len(part), dtype=bool)
        for name in frame.columns:
            gap = is_missing(part[name])
            any_missing |= gap
            missing[name] = missing.get(name, 0) + int(gap.sum())
            values = part[name].to_numpy()[train & ~gap]
            train_missing[name] = train_missing.get(name, 0) + int((train & gap).sum())
            filled[name] = filled.get(name, 0) + len(values)
            if len(values):
                first.setdefault(name, values[0])
                varies[name] = varies.get(name, False) or bool((values != first[name]).any())
        rows += int(any_missing.sum())
    problems = {n: "all_missing" for n in frame.columns if not filled[n]}
    problems |= {n: "constant" for n in frame.columns if filled[n] and not varies.get(n) and not train_missing[n]}
    return missing, dict(sorted(problems.items(), key=lambda item: list(frame.columns).index(item[0]))), rows, [first.get(n) for n in frame.columns]


def test_column_profile_by_blocks_matches_the_column_loop():
    rng = np.random.default_rng(3)
    n = 30
    frame = pd.DataFrame({
        "num": rng.normal(size=n), "gaps": np.where(rng.random(n) < 0.3, np.nan, 1.0), "inf": np.where(rng.random(n) < 0.2, np.inf, 2.0),
        "f32": rng.normal(size=n).astype(np.float32), "ints": rng.integers(0, 2, n), "same": 4.0,
        "text": pd.Series(rng.choice(["a", "b", None], n), dtype=object), "flag": pd.Series(rng.choice([True, False, None], n), dtype=object),
        "one": pd.Series(["k"] * n, dtype=object), "empty": pd.Series([None] * n, dtype=object), "str": pd.Series(rng.choice(["p", "q"], n)),
    })
    is_train = rng.random(n) < 0.7
    batches = [np.arange(0, 7), np.arange(7, 8), np.arange(8, 8), np.arange(8, n)]
    profile = ColumnProfile(list(frame.columns))
    for rows_of in batches:
        profile.update(frame.iloc[rows_of].reset_index(drop=True), is_train[rows_of])
    missing, problems, rows, first = _profile_by_columns(frame, batches, is_train)
    assert profile.missing == missing and profile.problems() == problems and profile.rows_with_missing == rows
    assert [profile.first.get(name) for name in frame.columns] == first
    assert {w["column"]: w["detail"] for w in profile.warnings()}["one"].endswith("same value ('k'); the column is left out of the model inputs")
