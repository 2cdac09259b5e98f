"""What the producer puts on the broker: the whole arguments in the body, and in the headers
(which every event and Flower show) only a summary that holds no athlete data or secret."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import redis

from storage.settings import Settings
from tests.factories import session_payload
from tests.services import redis_database
from workers.client import TrainlogClient
from workers.summaries import summarize

TOKEN = "tok-SECRET-4711"


def test_summaries_show_scalars_and_the_size_of_the_rest() -> None:
    assert summarize("athlete-7") == "athlete-7"
    assert summarize(3) == 3 and summarize(None) is None and summarize(True) is True
    assert repr(summarize("x" * 500)) == repr("x" * 80) + "…"
    assert (
        repr(summarize(session_payload(1)))
        == f"{{_id={session_payload(1)['_id']!r}, {len(session_payload(1))} keys}}"
    )
    assert repr(summarize({"accessToken": TOKEN})) == "{1 key}"
    assert repr(summarize([{"a": 1}, {"b": 2}])) == "[2 items]"


def test_the_broker_holds_whole_arguments_but_headers_hold_only_summaries(
    tmp_path: Path,
) -> None:
    with redis_database() as url:
        client = TrainlogClient(Settings.for_home(tmp_path, broker_url=url))
        row = {"athleteId": "a1", "provider": "strava", "accessToken": TOKEN}
        client.send("upsert_rows", "tokens", [row])
        payload = session_payload(5)
        client.send("save_session", payload)
        client.close()
        messages = [json.loads(raw) for raw in redis.Redis.from_url(url).lrange("default", 0, -1)]
    headers = {m["headers"]["task"]: m["headers"] for m in messages}
    assert headers["trainlog.upsert_rows"]["argsrepr"] == "['tokens', [1 item]]"
    assert (
        headers["trainlog.save_session"]["argsrepr"]
        == f"[{{_id={payload['_id']!r}, {len(payload)} keys}}]"
    )
    assert all(h["kwargsrepr"] == "{}" for h in headers.values())
    text = json.dumps([m["headers"] for m in messages])
    assert TOKEN not in text and payload["userName"] not in text
    assert any(TOKEN in base64.b64decode(m["body"]).decode() for m in messages)  # the worker's
