"""The scheduled deployment carries the cron schedule and the overrides, and rejects bad overrides."""

from __future__ import annotations

import pytest

from exemplar.errors import ExemplarError
from flows.serve import build_deployment


def test_deployment_has_the_cron_schedule_and_overrides():
    deployment = build_deployment("nightly", "0 3 * * *", ["train.epochs=2"])
    assert deployment.parameters == {"overrides": ["train.epochs=2"]}
    assert deployment.schedules[0].schedule.cron == "0 3 * * *"


def test_bad_override_fails_before_serving():
    with pytest.raises(ExemplarError):
        build_deployment("nightly", "0 3 * * *", ["train.nope=1"])
