"""Questions about a whole column of text answered by C-level searches of its values joined by
NUL (no stored text holds NUL): does any value start with one of these characters, is any
empty. The search for a start is a NUL followed by a character class, which the regex
engine finds by scanning for the NUL; a pattern starting with an alternation (`(?:^|\x00)…`)
tries every position and is far slower (docs/benchmarks.md)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

SEPARATOR = "\x00"


def joined(values: Iterable[str]) -> str:
    return SEPARATOR.join(values)


def any_starts_with(text: str, chars: str) -> bool:
    """Whether a value of `text` (joined values) starts with one of the characters `chars`."""
    return bool(text) and (text[0] in chars or _after_separator(chars).search(text) is not None)


@cache
def _after_separator(chars: str) -> re.Pattern[str]:
    return re.compile(SEPARATOR + "[" + re.escape(chars) + "]")


def any_empty(text: str, count: int) -> bool:
    """Whether a value of `text` (`count` joined values) is the empty string."""
    if count == 0:
        return False
    return (
        text == ""
        or text.startswith(SEPARATOR)
        or text.endswith(SEPARATOR)
        or SEPARATOR * 2 in text
    )
