"""workers.brokers.redis on a real Redis: a taken message is recorded as unacked in the same
step, so an unacked message survives its consumer; no_ack and malformed messages are handled."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Message, Producer, Queue

from storage.settings import Settings
from workers.config import REDIS_TRANSPORT
from workers.health import check_all

QUEUE = Queue("jobs", Exchange("jobs", type="direct"), routing_key="jobs")


@pytest.fixture
def url(redis_url: str) -> Iterator[str]:
    yield redis_url


def connect(url: str, **options: object) -> Connection:
    return Connection(url, transport=REDIS_TRANSPORT, transport_options=options)


def publish(url: str, body: dict) -> None:
    with connect(url) as connection:
        Producer(connection).publish(
            body, exchange=QUEUE.exchange, routing_key="jobs", declare=[QUEUE], serializer="json"
        )


def drain_until(connection: Connection, done: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=0.2)


def take_one(connection: Connection, *, no_ack: bool = False) -> Message:
    received: list[Message] = []
    with Consumer(
        connection,
        [QUEUE],
        callbacks=[lambda _, message: received.append(message)],
        no_ack=no_ack,
        accept=["json"],
    ):
        drain_until(connection, lambda: bool(received))
    assert received, "no message delivered"
    return received[0]


def test_taken_message_is_unacked_until_acked(url: str) -> None:
    publish(url, {"n": 1})
    store = redis.Redis.from_url(url)
    with connect(url) as connection:
        message = take_one(connection)
        assert message.payload == {"n": 1}
        stored = json.loads(store.hget("unacked", message.delivery_tag))
        assert stored[0]["properties"]["delivery_tag"] == message.delivery_tag
        assert stored[1:] == ["jobs", "jobs"]
        assert store.zscore("unacked_index", message.delivery_tag) is not None
        message.ack()
        assert store.hlen("unacked") == 0 and store.zcard("unacked_index") == 0


def test_message_of_a_vanished_consumer_is_restored_after_the_visibility_timeout(url: str) -> None:
    publish(url, {"n": 2})
    victim = connect(url)
    taken = take_one(victim)
    victim.transport.cycle.close()  # the consumer vanishes without acking or restoring
    store = redis.Redis.from_url(url)
    assert store.llen("jobs") == 0 and store.hexists("unacked", taken.delivery_tag)
    time.sleep(1.2)
    with connect(url, visibility_timeout=1) as rescuer:
        rescuer.default_channel.qos.restore_visible()
        again = take_one(rescuer)
        assert again.payload == {"n": 2} and again.delivery_info["redelivered"]
        again.ack()


def test_no_ack_consumer_leaves_nothing_to_restore(url: str) -> None:
    publish(url, {"n": 3})
    with connect(url) as connection:
        assert take_one(connection, no_ack=True).payload == {"n": 3}
    assert redis.Redis.from_url(url).hlen("unacked") == 0


def test_malformed_message_is_set_aside_with_its_reason_and_the_next_one_delivered(
    url: str, tmp_path: Path
) -> None:
    with connect(url) as connection:
        Consumer(connection, [QUEUE]).declare()
    store = redis.Redis.from_url(url)
    store.lpush("jobs", "not a kombu envelope")
    publish(url, {"n": 4})
    with connect(url) as connection:
        stand_in = take_one(connection)  # handed on only for a worker to record and answer
        assert stand_in.malformed and stand_in.kept and stand_in.body is None
        stand_in.ack()
        message = take_one(connection)
        assert message.payload == {"n": 4}
        message.ack()
    [entry] = store.lrange("trainlog.undeliverable", 0, -1)
    record = json.loads(entry)
    assert record["message"] == "not a kombu envelope" and record["queue"] == "jobs"
    assert "no properties with a delivery tag" in record["reason"]
    assert store.hlen("unacked") == 0
    health = check_all(Settings.for_home(tmp_path).with_(broker_url=url))
    assert health["broker"]["ok"]
    assert not health["undeliverable"]["ok"]
    assert "1 message(s) set aside in trainlog.undeliverable" in health["undeliverable"]["detail"]


def test_idle_consumer_takes_a_late_message_promptly(url: str) -> None:
    received: list[float] = []

    def on_message(_: object, message: Message) -> None:
        received.append(time.monotonic())
        message.ack()

    with connect(url) as connection, Consumer(connection, [QUEUE], callbacks=[on_message]):
        with pytest.raises(TimeoutError):
            connection.drain_events(timeout=0.3)  # empty: polls, neither spins nor fails
        sent = time.monotonic()
        publish(url, {"n": 5})
        drain_until(connection, lambda: bool(received))
    assert received and received[0] - sent < 1.0


@pytest.mark.parametrize(
    "transport",
    [
        REDIS_TRANSPORT,
        pytest.param(
            "redis",
            marks=pytest.mark.xfail(
                strict=True, reason="kombu's BRPOP drops a message whose reply is never read"
            ),
        ),
    ],
)
def test_message_popped_by_a_consumer_that_dies_before_reading_it_is_kept(
    url: str, transport: str
) -> None:
    publish(url, {"n": 6})
    store = redis.Redis.from_url(url)
    victim = Connection(url, transport=transport)
    channel = victim.default_channel
    Consumer(channel, [QUEUE], accept=["json"]).consume()
    victim.transport.cycle._register_BRPOP(channel)  # the pop reaches Redis ...
    deadline = time.monotonic() + 5
    while store.llen("jobs") and time.monotonic() < deadline:
        time.sleep(0.01)
    channel.client.connection.disconnect()  # ... and its consumer dies before reading the reply
    kept = [json.loads(raw)[0] for raw in store.hvals("unacked")]
    assert [json.loads(base64.b64decode(message["body"])) for message in kept] == [{"n": 6}]


def test_a_channel_sends_through_one_client_while_consuming(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages and events (fanout) published while the channel is consuming all go through
    one redis client, not a new one each (kombu's own transport builds one per message)."""
    from workers.brokers.redis import Channel

    built: list[bool] = []
    create = Channel._create_client

    def counting(self: Channel, asynchronous: bool = False) -> object:
        built.append(asynchronous)
        return create(self, asynchronous=asynchronous)

    monkeypatch.setattr(Channel, "_create_client", counting)
    events = Exchange("events", type="fanout")
    received: list[Message] = []
    with connect(url) as connection:
        producer = Producer(connection)
        with Consumer(connection, [QUEUE], callbacks=[lambda _, m: received.append(m)]):
            for n in range(20):
                producer.publish({"n": n}, exchange=QUEUE.exchange, routing_key="jobs")
                producer.publish({"event": n}, exchange=events, routing_key="x", declare=[events])
            drain_until(connection, lambda: len(received) == 20)
        for message in received:
            message.ack()
    assert sorted(m.payload["n"] for m in received) == list(range(20))
    assert built.count(False) == 1  # the commands client, once; the async one is for polling
