"""The project source a module imports, transitively (what a DVC stage running it depends on).

    python -m tests.import_closure flows.score     # the deps to list for the score stage
    python -m tests.import_closure --write         # rewrite the source deps of every stage in dvc.yaml

Imports are read from the source with ``ast`` (every ``import`` anywhere in a module, including
those inside functions), without executing anything; only modules of this project are followed.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("exemplar", "flows", "tasks")


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The file defining module `name` (a package's __init__.py), or None if it is not a module."""
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None


def imported_names(path: Path, module: str) -> Iterator[str]:
    """Every dotted name `module` (at `path`) imports; ``from a import b`` yields both a and a.b."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            base = ".".join(parts + ([node.module] if node.module else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def closure(module: str, root: Path = ROOT) -> list[str]:
    """Sorted repository-relative paths of every project file importing `module` loads (empty files,
    such as bare ``__init__.py``, left out: they change nothing, and DVC warns about empty deps)."""
    found: dict[str, Path] = {}
    pending = [module]
    while pending:
        parts = pending.pop().split(".")
        if parts[0] not in PACKAGES:
            continue
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__ too
            name = ".".join(parts[:depth])
            path = module_file(name, root)
            if path is not None and name not in found:
                found[name] = path
                pending.extend(imported_names(path, name))
    return sorted(str(path.relative_to(root)) for path in found.values() if path.stat().st_size)  # DVC warns on empty deps


def compact(files: list[str], root: Path = ROOT) -> list[str]:
    """`files` with every folder whose .py files are all in `files` written as the folder."""
    chosen = set(files)
    folders = sorted({str(Path(f).parent) for f in files}, key=lambda p: p.count("/"))
    out: list[str] = []
    for folder in folders:
        if folder in PACKAGES or any(folder.startswith(f"{o}/") for o in out):
            continue
        sources = {str(p.relative_to(root)) for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts and p.stat().st_size}
        if sources <= chosen:
            out.append(folder)
    covered = [f for f in files if not any(f.startswith(f"{o}/") for o in out)]
    return sorted(out + covered)


def stage_module(command: str) -> str:
    """``python -m flows.score --params ...`` -> ``flows.score``."""
    words = command.split()
    return words[words.index("-m") + 1]


def is_source(dep: str) -> bool:
    return dep.split("/")[0] in PACKAGES


def write_deps(path: Path = ROOT / "dvc.yaml") -> None:
    """Rewrite each stage's source deps in dvc.yaml as its import closure (data deps and comments kept)."""
    import yaml

    text = path.read_text()
    header = text[: text.index("stages:")]
    spec = yaml.safe_load(text)
    for stage in spec["stages"].values():
        data = [d for d in stage.get("deps", []) if not is_source(d)]
        stage["deps"] = compact(closure(stage_module(stage["cmd"]))) + data
    body = yaml.safe_dump(spec, sort_keys=False, width=120)
    path.write_text(header + body)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_deps()
    for name in [a for a in sys.argv[1:] if a != "--write"]:
        print(f"{name}:")
        print("\n".join(f"      - {dep}" for dep in compact(closure(name))))
