"""Messages no trainlog client would send, put straight on the broker, through a real worker on
Redis and on the embedded broker: each is set aside (or refused as VALIDATION), recorded and
answered, and the worker goes on taking jobs."""

from __future__ import annotations

import bz2
import json
import lzma
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery.result import AsyncResult

from tests.pipeline.conftest import Pipeline, wait_for
from tests.pipeline.hostile import (
    dead_letters,
    envelope,
    failure_ids,
    job_body,
    put_raw,
    task_headers,
)
from workers.brokers.compression import MAX_EXPANDED_BYTES
from workers.queues import list_undeliverable

EMPTY = job_body()


def _without(name: str) -> dict[str, Any]:
    headers = task_headers()
    del headers[name]
    return headers


MALFORMED: dict[str, Callable[[], dict[str, Any]]] = {
    "body is an object": lambda: envelope(task_headers(), b'{"a": 1}'),
    "body is [1]": lambda: envelope(task_headers(), b"[1]"),
    "kwargs are a list": lambda: envelope(task_headers(), b"[[], [], {}]"),
    "args are text": lambda: envelope(task_headers(), b'["abc", {}, {}]'),
    "body is not JSON": lambda: envelope(task_headers(), b"{not json"),
    "body is not base64": lambda: envelope(task_headers(), "!!!notbase64***", encoded=True),
    "body is not UTF-8": lambda: envelope(task_headers(), b"[[\xff], {}, {}]"),
    "timelimit is text": lambda: envelope(task_headers(timelimit="abc"), EMPTY),
    "timelimit of three": lambda: envelope(task_headers(timelimit=[1, 2, 3]), EMPTY),
    "timelimit past the worker's": lambda: envelope(task_headers(timelimit=[None, 1e9]), EMPTY),
    "a soft limit of 3 ms": lambda: envelope(task_headers(timelimit=[None, 0.003]), EMPTY),
    "no id": lambda: envelope(_without("id"), EMPTY),
    "id is a number": lambda: envelope(task_headers(id=5), EMPTY),
    "task is a list": lambda: envelope(task_headers(task=["x"]), EMPTY),
    "retries is text": lambda: envelope(task_headers(retries="2"), EMPTY),
    "eta is not a time": lambda: envelope(task_headers(eta="tomorrow"), EMPTY),
    "eta a day ahead": lambda: envelope(
        task_headers(eta=(datetime.now(UTC) + timedelta(days=1)).isoformat()), EMPTY
    ),
    "expires is a number": lambda: envelope(task_headers(expires=12), EMPTY),
    "headers are a list": lambda: envelope([1, 2], EMPTY),
    "no properties": lambda: envelope(task_headers(), EMPTY, properties=False),
    "embed holds an id": lambda: envelope(task_headers(), b'[[], {}, {"id": "x"}]'),
    "callbacks are numbers": lambda: envelope(task_headers(), b'[[], {}, {"callbacks": [1]}]'),
    "stamps are a list": lambda: envelope(task_headers(stamps=[1]), EMPTY),
    "pickle": lambda: envelope(
        task_headers(), b"\x80\x04N.", content_type="application/x-python-serialize"
    ),
    "yaml": lambda: envelope(task_headers(), b"- 1\n", content_type="application/x-yaml"),
    "unknown task": lambda: envelope(task_headers(task="elsewhere.job"), EMPTY),
    "a header nested 800 deep": lambda: envelope(task_headers(extra=_nested(800)), EMPTY),
    "a compression bomb": lambda: envelope(
        task_headers(compression="application/x-gzip"), _zlib_bomb(MAX_EXPANDED_BYTES + 1)
    ),
    "an unknown compression": lambda: envelope(task_headers(compression="x-nonsense"), EMPTY),
    "gzip that is not": lambda: envelope(task_headers(compression="gzip"), EMPTY),
    "a property nested 200 deep": lambda: _with_property("extra", _nested(200)),
    "embed nested 300 deep": lambda: envelope(
        task_headers(),
        json.dumps([[], {}, {"chord": {"task": "x", "options": _nested(300)}}]).encode(),
    ),
}


def _zlib_bomb(size: int) -> bytes:
    """`[[], {}, {}]` and then `size` spaces, zlib-compressed: a few hundred kB."""
    packer = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    parts = [packer.compress(EMPTY)]
    parts += [packer.compress(chunk) for _ in range(size // len(chunk))]
    parts += [packer.compress(b" " * (size % len(chunk))), packer.flush()]
    return b"".join(parts)


def _nested(depth: int) -> list[Any]:
    deep: list[Any] = []
    for _ in range(depth):
        deep = [deep]
    return deep


def _with_property(name: str, value: Any) -> dict[str, Any]:
    message = envelope(task_headers(), EMPTY)
    message["properties"][name] = value
    return message


def ping_runs(pipeline: Pipeline) -> None:
    assert pipeline.worker.process is not None and pipeline.worker.process.poll() is None
    assert pipeline.client.run("ping", timeout=30)["pong"] is True


def result_of(pipeline: Pipeline, task_id: str) -> AsyncResult:
    return AsyncResult(task_id, app=pipeline.client.celery)


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_a_malformed_message_is_set_aside_recorded_answered_and_the_worker_goes_on(
    pipeline: Pipeline, shape: str
) -> None:
    message = MALFORMED[shape]()
    before = dead_letters(pipeline.settings)
    put_raw(pipeline.settings, message)
    assert wait_for(lambda: dead_letters(pipeline.settings) > before), "nothing set aside"
    ping_runs(pipeline)
    kept = list_undeliverable(pipeline.settings, limit=200)
    assert any(entry["message"] == message for entry in kept)
    headers = message["headers"]
    task_id = headers.get("id") if isinstance(headers, dict) else None
    if isinstance(task_id, str):  # its producer is answered, and an operator can list it
        result = result_of(pipeline, task_id)
        assert wait_for(result.ready), f"no result for {shape}"
        assert result.state == "FAILURE"
        assert str(result.result).startswith("VALIDATION: message set aside: its")
        assert wait_for(lambda: task_id in failure_ids(pipeline.stores))


def test_a_dead_letter_says_why(pipeline: Pipeline) -> None:
    put_raw(pipeline.settings, envelope(task_headers(timelimit="abc"), EMPTY))
    assert wait_for(
        lambda: any(
            "timelimit" in entry["reason"] for entry in list_undeliverable(pipeline.settings)
        )
    )


def test_headers_nested_past_pythons_json_stack_are_set_aside_and_listed(
    pipeline: Pipeline,
) -> None:
    """Read by the broker's Lua (cjson allows 1000 levels) but not by Python's json: the
    worker stopped, and so did every worker the message was handed to next."""
    headers = json.dumps(task_headers())
    deep = '"extra": ' + "[" * 990 + "]" * 990 + ", "
    message = json.loads(json.dumps(envelope({}, EMPTY)))
    text = json.dumps(message).replace('"headers": {}', '"headers": {' + deep + headers[1:])
    put_raw(pipeline.settings, text.encode())

    def listed() -> bool:  # as its text; the embedded broker first waits out a grace period
        kept = list_undeliverable(pipeline.settings, limit=500)
        return any(entry["message"] == text for entry in kept)

    assert wait_for(listed, seconds=30), "not set aside"
    ping_runs(pipeline)


def test_raw_garbage_on_a_queue_is_set_aside(pipeline: Pipeline) -> None:
    before = dead_letters(pipeline.settings)
    put_raw(pipeline.settings, b"\x00\xffnot even json")
    # the embedded broker waits a grace period for a writer to finish the file
    assert wait_for(lambda: dead_letters(pipeline.settings) > before, seconds=30)
    ping_runs(pipeline)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'[[[{"activityId": "a", "durationSec": NaN}]], {}, {}]', "NaN"),
        (b'[[[{"activityId": "a", "durationSec": -Infinity}]], {}, {}]', "Infinity"),
        (b'[[[{"activityId": "a\\ud800"}]], {}, {}]', "not valid Unicode"),
        (b"[[" + b"[" * 3000 + b"]" * 3000 + b"], {}, {}]", "nest"),
        (b"[[" + b"[" * 100 + b"]" * 100 + b"], {}, {}]", "nest"),
    ],
    ids=["nan", "infinity", "lone surrogate", "3000 deep", "100 deep"],
)
def test_arguments_json_cannot_hold_fail_as_validation_and_are_recorded(
    pipeline: Pipeline, body: bytes, needle: str
) -> None:
    headers = task_headers("trainlog.ingest_activities")
    if needle == "not valid Unicode":  # as Celery writes it: the repr keeps the surrogate
        headers["argsrepr"] = "[[{'activityId': 'a\ud800'}]]"
    put_raw(pipeline.settings, envelope(headers, body))
    result = result_of(pipeline, headers["id"])
    assert wait_for(result.ready, seconds=30), "the producer got no result"
    assert result.state == "FAILURE"
    assert str(result.result).startswith("VALIDATION:") and needle in str(result.result)
    assert wait_for(lambda: headers["id"] in failure_ids(pipeline.stores))
    ping_runs(pipeline)


@pytest.mark.parametrize("compression", ["gzip", "application/x-bz2", "xz"])
def test_a_compressed_message_runs(pipeline: Pipeline, compression: str) -> None:
    packed = {"gzip": zlib.compress, "application/x-bz2": bz2.compress, "xz": lzma.compress}
    headers = task_headers(compression=compression)
    put_raw(pipeline.settings, envelope(headers, packed[compression](EMPTY)))
    result = result_of(pipeline, headers["id"])
    assert wait_for(result.ready) and result.get(timeout=5)["pong"] is True


def test_a_protocol_1_message_runs(pipeline: Pipeline) -> None:
    headers = task_headers()
    body = {"task": "trainlog.ping", "id": headers["id"], "args": [], "kwargs": {}}
    put_raw(pipeline.settings, envelope({}, json.dumps(body).encode()))
    result = result_of(pipeline, headers["id"])
    assert wait_for(result.ready) and result.get(timeout=5)["pong"] is True


def _signature(name: str) -> dict[str, Any]:
    return {"task": name, "args": [], "kwargs": {}, "options": {}, "subtask_type": None}


@pytest.mark.parametrize("builtin", ["celery.starmap", "celery.chunks"])
def test_a_job_run_by_a_celery_builtin_is_recorded_when_it_fails(
    pipeline: Pipeline, builtin: str
) -> None:
    bad = [["goals", [{"goalId": f"{builtin}-1", "athleteId": "a"}]]]  # no title: refused
    kwargs: dict[str, Any] = {"task": _signature("trainlog.upsert_rows"), "it": bad}
    if builtin == "celery.chunks":
        kwargs["n"] = 1
    sent = pipeline.client.celery.send_task(builtin, kwargs=kwargs, queue="default")
    sent.get(timeout=30, propagate=False)

    def recorded() -> list[dict[str, Any]]:
        return [
            row
            for row in pipeline.stores.repository("task_failures").iterate()
            if row["taskName"] == "trainlog.upsert_rows"
            and f"{builtin}-1" in json.dumps(row["arguments"])
        ]

    rows = wait_for(recorded)
    assert rows and rows[0]["errorCode"] == "VALIDATION"
    ping_runs(pipeline)
