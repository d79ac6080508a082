"""Facts about a canonical dataset for metrics, MLflow and the report."""

from __future__ import annotations

from exemplar.data.canonical import Dataset, dataset_hash


def describe_dataset(dataset: Dataset) -> dict:
    """Row counts per split and class, the modality and input shape, and the dataset hash."""
    table = dataset.table
    per_class = table.groupby("label_name", sort=True).size()
    return {
        "hash": dataset_hash(table),
        "source": dataset.info.source,
        "modality": dataset.info.modality,
        "input_shape": list(dataset.info.input_shape),
        "num_classes": dataset.info.num_classes,
        "rows": int(len(table)),
        "train_rows": int((table["split"] == "train").sum()),
        "test_rows": int((table["split"] == "test").sum()),
        "rows_per_class": {str(k): int(v) for k, v in per_class.items()},
    }
