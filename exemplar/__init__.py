"""exemplar: audit the data behind a model.

The library layer: pure, typed functions on tensors, arrays and DataFrames.
It never imports prefect, mlflow, dvc or hydra; those live in ``tasks/`` and ``flows/``.
"""

__version__ = "0.1.0"
