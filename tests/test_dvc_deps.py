"""Every dvc.yaml stage lists as deps all the project source its module imports (so `dvc repro` never
skips a stage whose code changed), and nothing it does not import."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.import_closure import closure, compact, is_source, stage_module

STAGES = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]
FIX = "Fix: run `python -m tests.import_closure --write` and commit dvc.yaml."


def _covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep.rstrip("/") + "/")


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_are_its_import_closure(name):
    stage = STAGES[name]
    imported = closure(stage_module(stage["cmd"]))
    deps = [d for d in stage["deps"] if is_source(d)]
    missing = [path for path in imported if not any(_covers(dep, path) for dep in deps)]
    assert not missing, f"stage '{name}' imports {missing} but dvc.yaml does not list them. {FIX}"
    unused = [dep for dep in deps if not any(_covers(dep, path) for path in imported)]
    assert not unused, f"stage '{name}' lists {unused} in dvc.yaml but never imports them. {FIX}"


def test_the_closure_follows_imports_inside_functions_and_packages(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "exemplar" / "models").mkdir(parents=True)
    (tmp_path / "flows" / "__init__.py").write_text("")
    (tmp_path / "flows" / "stage.py").write_text("def run():\n    from exemplar.models import net\n")
    (tmp_path / "exemplar" / "__init__.py").write_text('"""Package."""\n')
    (tmp_path / "exemplar" / "models" / "__init__.py").write_text("from .layers import dense\n")
    (tmp_path / "exemplar" / "models" / "net.py").write_text("import torch\n")
    (tmp_path / "exemplar" / "models" / "layers.py").write_text("dense = 1\n")
    (tmp_path / "exemplar" / "unused.py").write_text("")
    files = closure("flows.stage", tmp_path)
    assert files == sorted(["flows/stage.py", "exemplar/__init__.py", "exemplar/models/__init__.py",
                            "exemplar/models/layers.py", "exemplar/models/net.py"])
    assert compact(files, tmp_path) == sorted(["exemplar/__init__.py", "exemplar/models", "flows/stage.py"])


def test_the_stages_named_in_the_issue_now_list_what_they_import():
    assert "exemplar/scoring/fusion.py" in STAGES["report"]["deps"]
    assert any(_covers(dep, "exemplar/models/factory.py") for dep in STAGES["compress"]["deps"])
