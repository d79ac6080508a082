"""What every benchmark result records about where it came from: the git commit of the tree it ran on."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git_commit(rev: str = "HEAD") -> str:
    """The full commit id of `rev`, with ``+dirty`` when tracked files differ from it (HEAD only)."""
    commit = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if rev != "HEAD" or not commit:
        return commit or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return commit + ("+dirty" if dirty else "")
