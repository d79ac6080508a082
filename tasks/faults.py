"""Fault-injection points for the reliability tests (docs/reliability.md); inert unless asked for.

``EXEMPLAR_FAULT=kill@<point>`` SIGKILLs this process's whole process group when the run reaches
`<point>`; ``EXEMPLAR_FAULT=wait@<point>@<file>`` blocks there until `<file>` exists. Points:
``staged:<stage>`` (a stage's outputs are written into staging, not committed), ``committing:<stage>``
(after the commit point, before the files are moved into place), ``checkpoint:<seed>:<epoch>`` (a
checkpoint is on disk, that epoch's dynamics are not).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def reached(point: str) -> None:
    """Act on $EXEMPLAR_FAULT if it names `point`; otherwise return at once."""
    fault = os.environ.get("EXEMPLAR_FAULT", "")
    if not fault:
        return
    action, _, rest = fault.partition("@")
    target, _, argument = rest.partition("@")
    if target != point:
        return
    if action == "kill":
        os.killpg(os.getpgrp(), signal.SIGKILL)
    if action == "wait":
        while not Path(argument).exists():
            time.sleep(0.05)
