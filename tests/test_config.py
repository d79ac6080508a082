"""conf/ is the source of truth: params.yaml must equal its default composition, and every option of
every config group must compose and validate."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from omegaconf import OmegaConf

from exemplar.errors import ExemplarError
from flows.cli import load_config
from flows.config import CONF_DIR, compose
from tests.conftest import PROJECT_ROOT


def committed_params() -> dict | None:
    """params.yaml as committed at HEAD (None outside git)."""
    done = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30)
    return yaml.safe_load(done.stdout) if done.returncode == 0 else None


def test_params_yaml_equals_the_composed_default():
    """The workspace file, or else the committed one: `dvc exp run -S key=value` rewrites the workspace
    params.yaml with that experiment's values, which is a state of the workspace, not stale source."""
    composed = OmegaConf.to_container(compose([]))
    on_disk = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    if on_disk != composed:
        assert committed_params() == composed, "params.yaml is stale: run `make params` and commit it"


GROUP_OPTIONS = [
    (group.name, option.stem)
    for group in sorted(CONF_DIR.iterdir()) if group.is_dir()
    for option in sorted(group.glob("*.yaml"))
]


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_group_option_composes_and_validates(group, option, tmp_path):
    overrides = [f"{group}={option}"]
    if group == "data" and option != "digits":
        (tmp_path / "data").mkdir()
        overrides.append(f"data.path={tmp_path / 'data'}")
    cfg = load_config(overrides)
    assert cfg[group] is not None


def test_unknown_override_names_the_key_and_the_valid_ones():
    with pytest.raises(ExemplarError, match=r"'epochz'.*epochs"):
        load_config(["train.epochz=3"])


def test_unknown_group_option_lists_the_options():
    with pytest.raises(ExemplarError, match=r"unknown option 'nope' for config group 'data'"):
        load_config(["data=nope"])


def test_missing_parquet_path_is_reported():
    with pytest.raises(ExemplarError, match="data.path"):
        load_config(["data=parquet"])


def test_report_fusion_in_conf_is_the_shipped_recipe():
    """conf/report/default.yaml spells out the recipe the benchmark measured; the two must not drift."""
    from exemplar.report.config import ReportConfig
    from exemplar.scoring.fusion import DEFAULT

    listed = yaml.safe_load((CONF_DIR / "report" / "default.yaml").read_text())["fusion"]
    assert ReportConfig(fusion=listed).recipe() == DEFAULT
    assert ReportConfig().recipe() == DEFAULT


def test_report_fusion_overrides_reach_the_recipe():
    from exemplar.report.config import ReportConfig

    cfg = load_config(["report.fusion.exclude=[]", "report.fusion.alpha=0.2", "report.fusion.any_of=[atypical]"])
    recipe = ReportConfig(**cfg["report"]).recipe()
    assert recipe.exclude == () and recipe.alpha == 0.2 and recipe.any_of == ("atypical",)


@pytest.mark.parametrize(("override", "message"), [
    ("report.fusion.method=borda", r"report\.fusion\.method must be one of .*'borda'"),
    ("report.fusion.alpha=0", r"report\.fusion\.alpha must be a number in \(0, 1\], got 0"),
    ("report.fusion.exclude=[outlier]", r"report\.fusion\.exclude has unknown name\(s\) \['outlier'\].*outlier_score"),
    ("report.fusion.exclude=outlier_score", r"report\.fusion\.exclude must be a list of names"),
    ("report.fusion.any_of=[atypicl]", r"report\.fusion\.any_of .*did you mean \['atypical'\]"),
    ("report.fusion.by_class=maybe", r"report\.fusion\.by_class must be true or false"),
    ("report.fusion.bogus=1", r"report\.fusion\.bogus"),
    ("report.fusion.balance=skill", r"report\.fusion\.balance=skill .* only report\.fusion\.label=members fuses .*Fix: add report\.fusion\.label=members"),
    ("report.fusion=5", r"report\.fusion must be a group of settings"),
])
def test_a_bad_fusion_setting_names_its_key_before_any_stage(override, message):
    with pytest.raises(ExemplarError, match=message):
        load_config([override])
