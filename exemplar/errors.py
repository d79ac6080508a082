"""The one exception type users see for problems with their data or settings."""

from __future__ import annotations

from collections.abc import Iterable


class ExemplarError(ValueError):
    """A problem the user can fix: the message names what is wrong, where, and the fix."""


def describe_ids(ids: Iterable[object], limit: int = 10) -> str:
    """Render offending row ids for an error message, e.g. ``'a', 'b' and 3 more``."""
    ids = [str(i) for i in ids]
    shown = ", ".join(repr(i) for i in ids[:limit])
    extra = len(ids) - limit
    return f"{shown} and {extra} more" if extra > 0 else shown
