"""What a worker checks of a task message before Celery reads it.

Celery trusts a message's shape: a body that is not ``[args, kwargs, embed]``, a ``timelimit``
that is not a pair, a header of the wrong type or a body that does not decode raised out of
its request handling and stopped the worker, and the restored message stopped the next one.
`read_envelope` checks every header and body field Celery reads, with the type Celery needs,
and returns the job in protocol 2 form (protocol 1 messages, which older and foreign clients
send, are converted), or raises `Malformed` naming the first field that is wrong."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.utils.time import maybe_iso8601

from storage.errors import ValidationError
from storage.json_values import MAX_NESTING, check_nesting

ACCEPTED_TYPE = "application/json"
ACCEPTED_ENCODINGS = (None, "utf-8", "utf8")
MAX_ID_CHARS = 155  # Celery's SQL result backend keeps task ids in a 155-character column
MAX_NAME_CHARS = 255
MIN_TIME_LIMIT = 1.0  # seconds: the shortest time limit a message may ask for
EMBED_KEYS = ("callbacks", "errbacks", "chain", "chord")
# headers Celery reads that may be missing or null, and otherwise must be text
TEXT_HEADERS = (
    "shadow", "root_id", "parent_id", "group", "origin", "lang", "argsrepr", "kwargsrepr",
    "meth",
)  # fmt: skip
TEXT_PROPERTIES = ("reply_to", "correlation_id")
# protocol 1 bodies carry in the body what protocol 2 carries in the headers
PROTOCOL_1_HEADERS = (
    "task", "id", "root_id", "parent_id", "group", "eta", "expires", "retries", "timelimit",
    "lang", "origin", "shadow", "meth", "argsrepr", "kwargsrepr",
)  # fmt: skip


class Malformed(Exception):
    """A message a worker cannot turn into a job; `task_id` when the message names a usable
    one (its producer can then be given a failure result)."""

    def __init__(self, reason: str, *, task_id: str | None = None, task: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.task_id = task_id
        self.task = task


@dataclass
class Envelope:
    """A message's job, as Celery will read it (protocol 2)."""

    task_id: str
    task: str
    headers: dict[str, Any]
    args: list[Any]
    kwargs: dict[str, Any]
    embed: dict[str, Any] = field(default_factory=dict)
    converted: bool = False  # a protocol 1 body: the message must be rewritten as protocol 2


def read_envelope(message: Any, *, max_time_limit: float, max_eta_ahead: float) -> Envelope:
    """The job a kombu `message` holds, or `Malformed`. `max_time_limit`: the longest time
    limit a message may ask for; `max_eta_ahead`: how far ahead its eta may lie (seconds)."""
    headers = message.headers
    if isinstance(headers, dict):
        known = known_id(headers.get("id")), known_name(headers.get("task"))
    else:
        known = (None, None)
    problem = getattr(message, "malformed", None)  # set by the transports (SafeMessage)
    if problem:
        raise Malformed(problem, task_id=known[0], task=known[1])
    if not isinstance(headers, dict):
        raise Malformed(f"its headers are a {type(headers).__name__}, not an object")
    if message.content_type != ACCEPTED_TYPE:
        raise Malformed(
            f"its content type is {message.content_type!r}; workers accept only JSON "
            f"({ACCEPTED_TYPE})",
            task_id=known[0],
            task=known[1],
        )
    encoding = message.content_encoding
    if not (encoding is None or str(encoding).lower() in ACCEPTED_ENCODINGS):
        raise Malformed(f"its content encoding is {encoding!r}, not utf-8", task_id=known[0])
    body = _decoded(message, *known)
    if isinstance(body, dict) and ("args" in body or ("task" in body and "task" not in headers)):
        # protocol 1 (or Celery's hybrid of both): the fields are in the body
        headers = {**{k: body[k] for k in PROTOCOL_1_HEADERS if k in body}, **headers}
        known = known_id(headers.get("id")), known_name(headers.get("task"))
        body = [body.get("args", []), body.get("kwargs", {}), _protocol_1_embed(body)]
        converted = True
    else:
        converted = False
    _check_nesting("headers", headers, known)
    _check_nesting("properties", message.properties, known)
    task_id = _text(headers, "id", required=True, limit=MAX_ID_CHARS, known=known)
    task = _text(headers, "task", required=True, limit=MAX_NAME_CHARS, known=known)
    named = (task_id, task)
    for name in TEXT_HEADERS:
        _text(headers, name, known=named)
    _check_headers(headers, named, max_time_limit, max_eta_ahead)
    _check_properties(message, named)
    if not isinstance(body, list | tuple) or len(body) != 3:
        raise Malformed(
            f"its body is {_shape(body)}, not [args, kwargs, embed]", task_id=task_id, task=task
        )
    args, kwargs, embed = body
    _check_nesting("embed (the body's third item)", embed, named)
    if not isinstance(args, list | tuple):
        raise Malformed(f"its args are {_shape(args)}, not a list", task_id=task_id, task=task)
    if not isinstance(kwargs, dict):
        raise Malformed(f"its kwargs are {_shape(kwargs)}, not an object", task_id=task_id)
    return Envelope(
        task_id, task, headers, list(args), kwargs, _check_embed(embed, named), converted
    )


def _decoded(message: Any, task_id: str | None, task: str | None) -> Any:
    try:
        return message.decode()
    except Exception as error:
        cause = error.__context__ or error.__cause__
        if isinstance(error, RecursionError) or isinstance(cause, RecursionError):
            reason = "its body nests lists or objects too deeply to decode"
        else:
            reason = f"its body is not valid JSON ({str(error)[:200]})"
        raise Malformed(reason, task_id=task_id, task=task) from None


def _check_nesting(part: str, value: Any, known: tuple[str | None, str | None]) -> None:
    """Headers and properties travel to the pool and into task events, through recursive
    pickling and repr: nested hundreds deep, they failed there, after Celery had reserved the
    job, and the worker lost one pool slot per such message. (Arguments are checked in
    workers/request.py, where a too-deep one is the job's VALIDATION failure.)"""
    try:
        check_nesting(value, part, limit=MAX_NESTING)
    except ValidationError:
        reason = f"its {part}: lists or objects nested more than {MAX_NESTING} levels deep"
        raise Malformed(reason, task_id=known[0], task=known[1]) from None


def _protocol_1_embed(body: Mapping[str, Any]) -> dict[str, Any]:
    return {name: body.get(name) for name in ("callbacks", "errbacks", "chord")} | {"chain": None}


def known_id(value: Any) -> str | None:
    """The message's task id when it is one a result can be stored under."""
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS and value.isprintable():
        return value
    return None


def known_name(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_NAME_CHARS else None


def _text(
    headers: Mapping[str, Any],
    name: str,
    *,
    required: bool = False,
    limit: int | None = None,
    known: tuple[str | None, str | None],
) -> Any:
    value = headers.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        what = "missing" if value is None else f"{_shape(value)}, not text"
        raise Malformed(f"its {name} header is {what}", task_id=known[0], task=known[1])
    if limit is not None and (len(value) > limit or not value.isprintable()):
        raise Malformed(
            f"its {name} header must be printable text of at most {limit} characters",
            task_id=known[0] if name != "id" else None,
            task=known[1],
        )
    return value


def _check_headers(
    headers: Mapping[str, Any],
    known: tuple[str, str],
    max_time_limit: float,
    max_eta_ahead: float,
) -> None:
    def bad(why: str) -> Malformed:
        return Malformed(why, task_id=known[0], task=known[1])

    retries = headers.get("retries", 0)
    if retries is not None and (not _is_int(retries) or retries < 0):
        raise bad(f"its retries header is {_shape(retries)}, not a whole number ≥ 0")
    for name in ("group_index", "replaced_task_nesting"):
        value = headers.get(name)
        if value is not None and (not _is_int(value) or value < 0):
            raise bad(f"its {name} header is {_shape(value)}, not a whole number ≥ 0")
    if headers.get("ignore_result") not in (None, True, False):
        raise bad("its ignore_result header is not true, false or null")
    _check_time_limit(headers.get("timelimit"), max_time_limit, bad)
    for name in ("eta", "expires"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            moment = maybe_iso8601(value) if isinstance(value, str) else None
        except (ValueError, TypeError, OverflowError):
            moment = None
        if moment is None:
            raise bad(f"its {name} header is {_shape(value)}, not an ISO-8601 time")
        if name == "eta":
            aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            if aware - datetime.now(UTC) > timedelta(seconds=max_eta_ahead):
                raise bad(
                    f"its eta {value} is more than {max_eta_ahead:g} s ahead (the broker's "
                    "visibility timeout): Redis would hand it to a second worker meanwhile"
                )
    for name in ("stamped_headers", "groups"):
        value = headers.get(name)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(item, str) for item in value)
        ):
            raise bad(f"its {name} header is {_shape(value)}, not a list of text")
    if headers.get("stamps") is not None and not isinstance(headers["stamps"], dict):
        raise bad(f"its stamps header is {_shape(headers['stamps'])}, not an object")


def _check_time_limit(value: Any, most: float, bad: Any) -> None:
    """Celery's `[hard, soft]` pair. A limit under MIN_TIME_LIMIT could only cut a job
    between two of its writes (a save's rows and its file)."""
    if value is None:
        return
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise bad(f"its timelimit header is {_shape(value)}, not [hard, soft]")
    for limit in value:
        if limit is None:
            continue
        if not _is_number(limit) or not MIN_TIME_LIMIT <= limit <= most:
            raise bad(
                f"its timelimit header holds {limit!r}: each limit must be null or "
                f"{MIN_TIME_LIMIT:g}-{most:g} s (the worker's own hard limit)"
            )


def _check_properties(message: Any, known: tuple[str, str]) -> None:
    properties = message.properties
    if not isinstance(properties, dict):
        raise Malformed("its properties are not an object", task_id=known[0], task=known[1])
    for name in TEXT_PROPERTIES:
        value = properties.get(name)
        if value is not None and not isinstance(value, str):
            raise Malformed(f"its {name} property is {_shape(value)}, not text", task_id=known[0])
    priority = properties.get("priority")
    if priority is not None and (not _is_int(priority) or not 0 <= priority <= 255):
        raise Malformed(f"its priority is {_shape(priority)}, not 0-255", task_id=known[0])
    if not isinstance(message.delivery_info, dict):
        raise Malformed("its delivery_info is not an object", task_id=known[0], task=known[1])


def _check_embed(embed: Any, known: tuple[str, str]) -> dict[str, Any]:
    def bad(why: str) -> Malformed:
        return Malformed(why, task_id=known[0], task=known[1])

    if embed is None:
        return {}
    if not isinstance(embed, dict):
        raise bad(f"its embed (the body's third item) is {_shape(embed)}, not an object")
    unknown = sorted(set(embed) - set(EMBED_KEYS))
    if unknown:
        raise bad(f"its embed holds {unknown[0]!r}; only {', '.join(EMBED_KEYS)} are read")
    for name in ("callbacks", "errbacks", "chain"):
        value = embed.get(name)
        if value is not None and not (
            isinstance(value, list) and all(_is_signature(item) for item in value)
        ):
            raise bad(f"its {name} is {_shape(value)}, not a list of task signatures")
    chord = embed.get("chord")
    if chord is not None and not _is_signature(chord):
        raise bad(f"its chord is {_shape(chord)}, not a task signature")
    return embed


def _is_signature(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("task"), str)
        and isinstance(value.get("args", []), list | tuple)
        and isinstance(value.get("kwargs", {}), dict)
        and isinstance(value.get("options", {}), dict)
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _shape(value: Any) -> str:
    """A value as a reason names it: its type, and the value when short."""
    if value is None:
        return "null"
    text = repr(value)
    kind = type(value).__name__
    return f"{kind} {text}" if len(text) <= 40 else f"a {kind}"
