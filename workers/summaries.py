"""What task events, Flower and logs show of a job's arguments: a summary, never the data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from celery.app.amqp import AMQP

SHOWN_TEXT_CHARS = 80  # a text argument is cut to this in events (Flower) and logs


class Shown(str):
    """A summary that prints without quotes."""

    def __repr__(self) -> str:
        return str(self)


def summarize(value: Any) -> Any:
    """What events and Flower show of an argument in place of Celery's repr of all of it:
    scalars as they are (long text cut), objects and lists by their size, a session by its
    `_id`. No nested value is shown, so athletes' data and token rows never reach an event
    stream, and a producer is spared the repr of a whole payload."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return (
            value if len(value) <= SHOWN_TEXT_CHARS else Shown(repr(value[:SHOWN_TEXT_CHARS]) + "…")
        )
    if isinstance(value, dict):
        shown = f"_id={str(value['_id'])[:40]!r}, " if isinstance(value.get("_id"), str) else ""
        return Shown(f"{{{shown}{_count(len(value), 'key')}}}")
    if isinstance(value, list | tuple):
        return Shown(f"[{_count(len(value), 'item')}]")
    return Shown(f"<{type(value).__name__}>")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def arguments_repr(args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, str]:
    """The `argsrepr` and `kwargsrepr` headers of a job: summaries of its arguments."""
    return {
        "argsrepr": repr([summarize(value) for value in args]),
        "kwargsrepr": repr({key: summarize(value) for key, value in kwargs.items()}),
    }


class SummarizingAMQP(AMQP):
    """Every message a worker sends (a retry, a job sent again, a follow-up, a job a Celery
    built-in sends) carries summaries unless its sender gave reprs: Celery's default repr
    of the arguments would show a token row in the task-sent event and the message headers."""

    def as_task_v2(
        self,
        task_id: str,
        name: str,
        args: Any = None,
        kwargs: Any = None,
        *rest: Any,
        **options: Any,
    ) -> Any:
        shown = arguments_repr(args or (), kwargs or {})
        for header in ("argsrepr", "kwargsrepr"):
            if options.get(header) is None:
                options[header] = shown[header]
        return super().as_task_v2(task_id, name, args, kwargs, *rest, **options)
