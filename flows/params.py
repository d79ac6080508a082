"""Write ``params.yaml``: the default composition of ``conf/`` (what DVC reads).

    python -m flows.params [overrides] [--out params.yaml]

DVC with Hydra composition enabled rewrites the same file on ``dvc exp run -S key=value``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import OmegaConf

from flows._env import PROJECT_ROOT
from flows.config import compose


def render(overrides: list[str]) -> str:
    return OmegaConf.to_yaml(compose(overrides))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = PROJECT_ROOT / "params.yaml"
    if "--out" in argv:
        at = argv.index("--out")
        out, argv = Path(argv[at + 1]), argv[:at] + argv[at + 2 :]
    out.write_text(render(argv))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
