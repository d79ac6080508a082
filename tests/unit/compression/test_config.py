from __future__ import annotations

import pytest

from exemplar.compression.config import CompressConfig, level_tag, quantization_tag
from exemplar.errors import ExemplarError


def test_defaults_are_valid_and_cover_the_issue_levels():
    config = CompressConfig()
    config.validate()
    assert config.sparsities == [0.3, 0.5, 0.7, 0.9]
    assert config.quantization == ["dynamic", "static"]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"sparsities": [0.5, 1.0]}, "sparsity must be in"),
        ({"sparsities": [-0.2]}, "sparsity must be in"),
        ({"method": "magic"}, "compress.method"),
        ({"quantization": ["int4"]}, "compress.quantization"),
        ({"sparsities": [], "quantization": []}, "nothing to compare"),
        ({"method": "gradual", "finetune_epochs": 0}, "finetune_epochs >= 1"),
        ({"initial_sparsity": 0.6, "sparsities": [0.5]}, "initial_sparsity"),
        ({"prune_end_fraction": 0.0}, "prune_end_fraction"),
        ({"calibration_rows": 0}, "calibration_rows"),
    ],
)
def test_bad_settings_name_the_setting(changes, message):
    with pytest.raises(ExemplarError, match=message):
        CompressConfig(**changes).validate()


def test_one_shot_without_fine_tuning_is_allowed():
    CompressConfig(method="oneshot", finetune_epochs=0).validate()


def test_level_tags():
    assert [level_tag(s) for s in (0.3, 0.5, 0.925, 0.0)] == ["p30", "p50", "p92_5", "p0"]
    assert quantization_tag("static") == "int8_static"


@pytest.mark.parametrize("value", ["[1.0]", "[-0.1]", "[0.5,1.5]"])
def test_invalid_sparsity_fails_at_start_up_before_any_training(value, tmp_path, capsys):
    from flows.cli import main

    out_dir = tmp_path / "run"
    trained = []
    status = main("pipeline", lambda cfg, path: trained.append(path), lambda *_: None, [f"out_dir={out_dir}", f"compress.sparsities={value}"])
    assert status == 2 and trained == [] and not out_dir.exists()
    assert "sparsity must be in [0, 1)" in capsys.readouterr().err
