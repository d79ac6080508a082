"""Two tracked runs side by side: which settings differ and how each metric moved (read from MLflow)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from exemplar.errors import ExemplarError
from tasks import tracking


@dataclass
class TrackedRun:
    """A run's identity and what MLflow holds for it (params as strings, metrics as latest values)."""

    run_id: str
    name: str
    params: dict[str, str]
    metrics: dict[str, float]


def find_run(uri: str, experiment: str, ref: str) -> TrackedRun:
    """The run whose id is `ref`, else the latest parent run named `ref` in `experiment`."""
    mlflow_client = tracking.client(uri)
    try:
        run = mlflow_client.get_run(ref)
    except Exception:  # MLflow raises MlflowException (or RestException) for an unknown id
        found = mlflow_client.get_experiment_by_name(experiment)
        escaped = ref.replace("'", "\\'")
        runs = mlflow_client.search_runs([found.experiment_id], filter_string=f"attributes.run_name = '{escaped}'",
                                         order_by=["attributes.start_time DESC"], max_results=1) if found else []
        if not runs:
            raise ExemplarError(
                f"no MLflow run with id or name '{ref}' in experiment '{experiment}' at {uri}. "
                "Fix: pass a run id (printed as 'mlflow run:' after `make run`) or a run name from the MLflow UI."
            ) from None
        run = runs[0]
    return TrackedRun(run.info.run_id, run.info.run_name, dict(run.data.params), dict(run.data.metrics))


def param_differences(a: dict[str, str], b: dict[str, str]) -> list[tuple[str, str | None, str | None]]:
    """(key, value in a, value in b) for every key whose value differs (None: absent), sorted by key."""
    return [(key, a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def metric_deltas(a: dict[str, float], b: dict[str, float]) -> list[tuple[str, float, float, float]]:
    """(metric, a, b, b - a) for every metric both runs have, sorted by name; NaN where either is NaN."""
    return [(key, a[key], b[key], b[key] - a[key]) for key in sorted(set(a) & set(b))]


def render(first: TrackedRun, second: TrackedRun) -> str:
    """The comparison as plain text: config differences, then metric deltas (changed ones first)."""
    lines = [f"A: {first.name} ({first.run_id})", f"B: {second.name} ({second.run_id})", "", "config differences (A -> B):"]
    changes = param_differences(first.params, second.params)
    lines += [f"  {key:<36} {_text(old)} -> {_text(new)}" for key, old, new in changes] or ["  none"]
    deltas = metric_deltas(first.metrics, second.metrics)
    deltas.sort(key=lambda row: (row[3] == 0 or math.isnan(row[3]), row[0]))
    lines += ["", f"metrics: {'A':>12} {'B':>12} {'B - A':>12}"]
    lines += [f"  {key:<36} {a:12.4f} {b:12.4f} {d:+12.4f}" for key, a, b, d in deltas] or ["  none in common"]
    only = sorted(set(first.metrics) ^ set(second.metrics))
    if only:
        lines.append(f"  (in one run only: {', '.join(only[:20])}{' ...' if len(only) > 20 else ''})")
    return "\n".join(lines)


def _text(value: str | None) -> str:
    return "(absent)" if value is None else value
