"""Messages as trainlog's transports hand them over, and the record of one set aside.

kombu builds a message from its envelope while delivering it: an envelope without
properties, a body that is not valid base64, headers that are not an object raised there,
inside the worker's event loop, and stopped the worker. `SafeMessage` never raises: what it
cannot read it keeps as `malformed`, and the worker's consumer sets the message aside
(workers/consumer.py). A set-aside message is kept whole with the reason, where an operator
finds it (`trainlog undeliverable`), never dropped."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from kombu.message import Message as BaseMessage
from kombu.transport import virtual

from workers.brokers.compression import BodyRefused, expand

UNREADABLE = "trainlog.unreadable"  # a transport's stand-in for an envelope it cannot read


def unreadable(raw: str, reason: str, tag: str, queue: str, *, kept: bool) -> dict[str, Any]:
    """A stand-in a transport delivers for an envelope it could not parse, so that the worker
    answers and records it like any other bad message; `kept`: already set aside."""
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested past Python's stack
        parsed = None
    headers = parsed.get("headers") if isinstance(parsed, dict) else None
    return {
        "headers": headers if isinstance(headers, dict) else {},
        "properties": {
            "delivery_tag": tag,
            "delivery_info": {"exchange": "", "routing_key": queue},
        },
        UNREADABLE: {"reason": reason, "kept": kept, "raw": raw},
    }


class SafeMessage(virtual.Message):
    """kombu's virtual-transport message; an envelope it cannot read gives a message with
    no body and `malformed` saying why, instead of an exception."""

    malformed: str | None = None
    kept = False  # already set aside by the transport

    def __init__(self, payload: Any, channel: Any = None, **kwargs: Any) -> None:
        try:
            stand_in = payload.get(UNREADABLE) if isinstance(payload, dict) else None
            if stand_in is not None:
                raise ValueError(stand_in["reason"])
            headers = payload.get("headers")
            compression = headers.get("compression") if isinstance(headers, dict) else None
            if compression is not None:  # read here, with a bound, instead of by kombu
                plain = {k: v for k, v in headers.items() if k != "compression"}
                super().__init__({**payload, "headers": plain}, channel=channel, **kwargs)
                self.body = expand(self.body, compression)
                self.headers = headers
            else:
                super().__init__(payload, channel=channel, **kwargs)
            if not isinstance(self.headers, dict):
                raise TypeError(f"its headers are a {type(self.headers).__name__}")
        except Exception as error:
            properties = payload.get("properties") if isinstance(payload, dict) else None
            properties = properties if isinstance(properties, dict) else {}
            tag = properties.get("delivery_tag")
            info = properties.get("delivery_info")
            headers = payload.get("headers") if isinstance(payload, dict) else None
            headers = headers if isinstance(headers, dict) else {}
            BaseMessage.__init__(
                self,
                body=None,
                channel=channel,
                delivery_tag=tag if isinstance(tag, str) else uuid.uuid4().hex,
                headers={k: v for k, v in headers.items() if k != "compression"},
                properties=properties,
                delivery_info=info if isinstance(info, dict) else {},
                **kwargs,
            )
            self.headers = headers
            if stand_in is not None:
                self._raw, self.kept = stand_in["raw"], bool(stand_in["kept"])
                self.malformed = str(stand_in["reason"])
                return
            self._raw = payload
            why = f"its envelope cannot be read ({type(error).__name__}: {error})"
            self.malformed = (str(error) if isinstance(error, BodyRefused) else why)[:300]


def set_aside_record(message: Any, reason: str, queue: str | None) -> dict[str, Any]:
    """What a dead-letter entry holds: why, from which queue, when, and the envelope whole."""
    raw = getattr(message, "_raw", None)
    return {
        "reason": reason,
        "queue": queue,
        "setAsideAt": datetime.now(UTC).isoformat(),
        "message": raw if raw is not None else _readable(message),
    }


def _readable(message: Any) -> dict[str, Any]:
    body = message.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="backslashreplace")
    return {"headers": message.headers, "properties": message.properties, "body": body}


def record_text(record: dict[str, Any]) -> str:
    """The record as stored: JSON, whatever the envelope held (a value JSON cannot hold is
    written as its repr)."""
    return json.dumps(record, default=repr)


def queue_of(message: Any) -> str | None:
    info = getattr(message, "delivery_info", None)
    if isinstance(info, dict):
        queue = info.get("routing_key") or info.get("queue")
        return str(queue) if queue is not None else None
    return None
