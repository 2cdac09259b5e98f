"""Hypothesis strategies for task message envelopes: every header and body field Celery reads
given a value of any JSON type (or left out), bodies of every shape, other content types and
broken envelopes. Shared by the fuzz test and `bench/fuzz_envelopes.py`."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

from tests.pipeline.hostile import envelope, task_headers

HEADERS = (
    "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries",
    "timelimit", "root_id", "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result",
    "stamped_headers", "stamps", "groups", "replaced_task_nesting", "meth",
)  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)
# values a field is sometimes given: near misses of what Celery expects
near_misses = st.sampled_from(
    [[], [None], [None, None, None], ["1", "2"], [1, -1], {}, "", "x", "2026-13-45", -1, 2**63]
)


@st.composite
def headers(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(json_values)  # not an object at all
    base = task_headers()
    for name in draw(st.lists(st.sampled_from(HEADERS), max_size=4, unique=True)):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            base.pop(name, None)
        else:
            base[name] = draw(json_values if choice == 1 else near_misses)
    if base.get("ignore_result") is True:
        base["ignore_result"] = False  # a job told not to store its result leaves no trace
    return base


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes | str, bool]:
    """(body, already encoded): a good ping body, JSON of any shape, or bytes that are not."""
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return json.dumps([[], {}, {}]).encode(), False
    if kind == 1:
        embed = draw(json_values)
        return json.dumps([[], {}, embed]).encode(), False
    if kind == 2:
        return json.dumps(draw(json_values)).encode(), False
    if kind == 3:
        return draw(st.binary(max_size=40)), False
    if kind == 4:
        return draw(st.text(max_size=20)), True  # an envelope body that is not base64
    if kind == 5:  # a protocol 1 body
        body = {"task": "trainlog.ping", "args": draw(json_values)}  # the id: the header's
        return json.dumps(body).encode(), False
    return base64.b64encode(b"[[], {}, {}]").decode() + draw(st.text(max_size=3)), True


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    header = draw(headers())
    body, encoded = draw(bodies())
    content_type = draw(
        st.sampled_from(["application/json"] * 6 + ["application/x-yaml", "text/plain", ""])
    )
    message = envelope(header, body, content_type=content_type, encoded=encoded)
    tweak = draw(st.integers(0, 12))
    if tweak == 0:
        del message["properties"]
    elif tweak == 1:
        message["properties"] = draw(json_values)
    elif tweak == 2:
        message["properties"]["body_encoding"] = draw(st.sampled_from(["rot13", None, 5]))
    elif tweak == 3:
        message["content-encoding"] = draw(st.sampled_from(["utf-16", "nope", 7, None]))
    elif tweak == 4 and isinstance(message["headers"], dict):
        message["headers"]["compression"] = "application/x-gzip"
    return message


def usable_id(message: dict[str, Any]) -> str | None:
    """The id a worker can answer under, if the message names one."""
    header = message.get("headers")
    task_id = header.get("id") if isinstance(header, dict) else None
    if isinstance(task_id, str) and 0 < len(task_id) <= 155 and task_id.isprintable():
        return task_id
    return None
