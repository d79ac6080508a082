"""Typed settings: check a config section's keys and value types against its dataclass before the
dataclass is built (its ``validate()`` then checks ranges). Plain Python only (no torch, no Hydra), so
the command line answers a bad setting at once.

Every message is one paragraph naming the key, what it got, what is allowed, and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable

from exemplar.errors import ExemplarError


def closest(name: str, valid: Iterable[str]) -> list[str]:
    """Up to three valid names closest to `name` (difflib), for 'did you mean' hints."""
    return difflib.get_close_matches(name, sorted(valid), n=3, cutoff=0.5)


def unknown_key_message(key: str, where: str, valid: Iterable[str]) -> str:
    valid = sorted(valid)
    near = closest(key.rsplit(".", 1)[-1], valid)
    hint = f"did you mean {' or '.join(repr(f'{where}.{n}' if where else n) for n in near)}? " if near else ""
    return f"unknown setting '{key}': {hint}Fix: use one of {valid} (every setting is listed in conf/ and by --help)."


def check_section(section: str, cls: type, values: dict) -> None:
    """Raise ExemplarError for a key `cls` does not have or a value of the wrong type."""
    if not isinstance(values, dict):
        raise ExemplarError(f"'{section}' must be a group of settings, got {values!r}. Fix: set its keys, e.g. {section}.<key>=value.")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in fields:
            raise ExemplarError(unknown_key_message(f"{section}.{key}", section, fields))
        check_value(f"{section}.{key}", value, hints[key])


def check_value(key: str, value: object, expected: object) -> None:
    """Raise ExemplarError unless `value` is of type `expected` (int, float, bool, str, list[...], X | None)."""
    problem = _mismatch(value, expected)
    if problem:
        raise ExemplarError(f"{key} must be {describe(expected)}, got {value!r} ({problem}). Fix: e.g. {key}={example(expected)}.")


def _mismatch(value: object, expected: object) -> str | None:
    options = typing.get_args(expected) if _is_union(expected) else ()
    if options:
        if value is None and type(None) in options:
            return None
        return _mismatch(value, next(o for o in options if o is not type(None)))
    origin = typing.get_origin(expected)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            return "not a list"
        (item,) = typing.get_args(expected) or (object,)
        for entry in value:
            problem = _mismatch(entry, item)
            if problem:
                return f"item {entry!r}: {problem}"
        return None
    if expected is bool:
        return None if isinstance(value, bool) else "not true/false"
    if expected is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "not a whole number"
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "not a number"
        return None if math.isfinite(value) else "not finite"
    if expected is str:
        return None if isinstance(value, str) else "not text"
    return None


def describe(expected: object) -> str:
    """'a whole number', 'a list of numbers or null', ..."""
    options = typing.get_args(expected) if _is_union(expected) else ()
    if options:
        inner = next(o for o in options if o is not type(None))
        return f"{describe(inner)} or null"
    if typing.get_origin(expected) is list:
        (item,) = typing.get_args(expected) or (object,)
        return f"a list of {_plural(item)}"
    return {bool: "true or false", int: "a whole number", float: "a finite number", str: "text"}.get(expected, str(expected))


def example(expected: object) -> str:
    options = typing.get_args(expected) if _is_union(expected) else ()
    if options:
        return example(next(o for o in options if o is not type(None)))
    if typing.get_origin(expected) is list:
        (item,) = typing.get_args(expected) or (object,)
        return f"[{example(item)},{example(item)}]"
    return {bool: "true", int: "3", float: "0.5", str: "name"}.get(expected, "...")


def _plural(item: object) -> str:
    return {bool: "true/false values", int: "whole numbers", float: "finite numbers", str: "names"}.get(item, "values")


def _is_union(expected: object) -> bool:
    return typing.get_origin(expected) in (typing.Union, types.UnionType)


def require(condition: bool, message: str) -> None:
    """Raise ExemplarError(message) unless `condition` (for validate() range checks)."""
    if not condition:
        raise ExemplarError(message)


def without_credentials(tree: object, where: str = "") -> tuple[object, list[str]]:
    """A copy of a settings `tree` (dicts, lists, scalars) in which every URL carrying a password
    (``scheme://user:password@host/...``) has its ``user:password@`` removed, and the dotted keys that had one.
    For files written beside a run (``settings.yaml``), which may be shared or versioned: credentials belong in
    the environment (MLflow reads ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``)."""
    from urllib.parse import urlsplit, urlunsplit

    if isinstance(tree, dict):
        pairs = [(key, without_credentials(value, f"{where}.{key}" if where else str(key))) for key, value in tree.items()]
        return {key: value for key, (value, _) in pairs}, [name for _, (_, names) in pairs for name in names]
    if isinstance(tree, list):
        items = [without_credentials(value, f"{where}[{i}]") for i, value in enumerate(tree)]
        return [value for value, _ in items], [name for _, names in items for name in names]
    if isinstance(tree, str) and "://" in tree and "@" in tree:
        try:
            parts = urlsplit(tree)
            has_password = parts.password is not None
        except ValueError:  # not a URL after all (e.g. a bracket in a path)
            return tree, []
        if has_password:
            host = parts.netloc.rsplit("@", 1)[1]
            return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), [where]
    return tree, []
