"""What any JSON value trainlog stores must be: nested at most MAX_NESTING levels, with finite
numbers and text that is valid Unicode. Python's json reads NaN, Infinity and lone UTF-16
surrogates ("\\ud800"), which no database column, JSON file or strict JSON reader takes
back: they are refused where they come in, naming the argument or field."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from storage.errors import ValidationError

MAX_NESTING = 64  # lists/objects inside each other: far above any real payload, and far below
# the depth at which JSON encoding, repr or validation would hit Python's recursion limit
_CONTAINERS = (dict, list, tuple)
# raw JSON that may hold a value check_scalars refuses: NaN, Infinity or an escaped surrogate
_SUSPECT = re.compile(rb"NaN|Infinity|\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_nesting(value: Any, field: str, *, limit: int = MAX_NESTING) -> None:
    """VALIDATION when `value` nests lists or objects more than `limit` levels deep
    (walked level by level, without recursion, so a deep value cannot exhaust the stack)."""
    _walk(value, field, scalars=False, limit=limit)


def check_json_value(value: Any, field: str) -> None:
    """`check_nesting`, and every number finite and every text valid Unicode."""
    _walk(value, field, scalars=True)


def check_arguments(
    args: Sequence[Any], kwargs: Mapping[str, Any], *, raw: bytes | None = None
) -> None:
    """A job's arguments, named as a producer sent them. With `raw`, the JSON they were
    decoded from, numbers and text are looked at only when that text could hold a bad one."""
    scalars = raw is None or _SUSPECT.search(raw) is not None
    for position, value in enumerate(args):
        _walk(value, f"argument {position + 1}", scalars=scalars)
    for name, value in kwargs.items():
        _walk(value, name, scalars=scalars)


def scalar_problem(value: Any) -> str | None:
    """Why a scalar cannot be stored as JSON, or None."""
    if isinstance(value, float | Decimal) and not math.isfinite(value):
        name = "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
        return f"holds {name}, which JSON does not allow"
    if isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
        return "holds text that is not valid Unicode (a lone UTF-16 surrogate)"
    return None


def _walk(value: Any, field: str, *, scalars: bool, limit: int = MAX_NESTING) -> None:
    """Level by level, without recursion: a value nested past Python's recursion limit is
    refused like any other."""
    level, depth = [value], 0
    while True:
        containers = [item for item in level if isinstance(item, _CONTAINERS)]
        if scalars and len(containers) < len(level):
            for item in level:
                if problem := scalar_problem(item):
                    raise ValidationError(f"{field} {problem}", field=field)
        if not containers:
            return
        depth += 1
        if depth > limit:
            raise ValidationError(
                f"{field} nests lists or objects more than {limit} levels deep",
                field=field,
            )
        level = []
        for item in containers:
            if isinstance(item, dict) and scalars:
                _check_keys(item, field)
            children: Any = item.values() if isinstance(item, dict) else item
            level.extend(children if scalars else filter(_is_container, children))


def _is_container(value: Any) -> bool:
    return isinstance(value, _CONTAINERS)


def _check_keys(item: dict[Any, Any], field: str) -> None:
    for key in item:
        if isinstance(key, str) and (problem := scalar_problem(key)):
            why = problem.replace("holds", "has a key with")
            raise ValidationError(f"{field} {why}", field=field)


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads(..., object_pairs_hook=unique_keys)`: an object naming a key twice is
    refused (ValueError) instead of keeping the last value, which would, say, save a session
    file under the second of its two `_id`s without a word."""
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise ValueError(f"the key {name[:60]!r} appears twice in one object")
        found[name] = value
    return found
