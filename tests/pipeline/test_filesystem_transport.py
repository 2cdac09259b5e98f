"""workers.brokers.filesystem, the embedded broker's transport: a poll that meets a message
file still being written leaves it for the next poll instead of losing it, a file that never
becomes a message is set aside, and concurrent sends and takes lose nothing."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from storage.settings import Settings
from storage.stores import Stores
from tests.factories import session_payload
from tests.pipeline.conftest import assert_saved_once, wait_for_sessions
from workers.app import create_app
from workers.brokers.claims import owner_alive, owner_name, recover_claims
from workers.brokers.filesystem import (
    TEMPORARY_PREFIX,
    UNFINISHED_GRACE_SECONDS,
    Channel,
    remove_abandoned_writes,
)
from workers.client import TrainlogClient
from workers.config import (
    FILESYSTEM_TRANSPORT,
    embedded_folders,
    prepare_embedded_broker,
    transport_options,
)
from workers.health import check_all
from workers.process import WorkerProcess

STOCK = "kombu.transport.filesystem:Transport"


def connect(home: Path, transport: str = FILESYSTEM_TRANSPORT) -> Connection:
    settings = Settings.for_home(home)
    prepare_embedded_broker(settings)
    options = transport_options(settings, "filesystem://")
    return Connection("filesystem://", transport=transport, transport_options=options)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def channel(home: Path) -> Iterator[Any]:
    with connect(home) as connection:
        yield connection.default_channel


def queue_folder(home: Path) -> Path:
    return embedded_folders(Settings.for_home(home))["queue"]


def message_file(home: Path, queue: str = "jobs", age: float = 0) -> Path:
    """An empty message file, named as stock kombu names it, as it leaves it between creating
    and writing it."""
    sent = round((time.monotonic() - age) * 1000)
    path = queue_folder(home) / f"{sent}_{uuid.uuid4()}.{queue}.msg"
    path.touch()
    return path


def ours_and_stock_failing(reason: str, raises: type[Exception] | None = None) -> Any:
    """Run a test on our transport, and on kombu's as a strict expected failure."""
    stock = pytest.mark.xfail(raises=raises, strict=True, reason=reason)
    return pytest.mark.parametrize(
        "transport",
        [FILESYSTEM_TRANSPORT, pytest.param(STOCK, marks=stock)],
        ids=["trainlog", "kombu-stock"],
    )


@ours_and_stock_failing(
    "kombu's filesystem transport parses a file its writer has not written", raises=ValueError
)
def test_a_message_caught_mid_write_is_taken_at_the_next_poll(home: Path, transport: str) -> None:
    with connect(home, transport) as connection:
        channel = connection.default_channel
        path = message_file(home)
        with pytest.raises(Empty):
            channel._get("jobs")
        assert path.exists(), "the unfinished message was taken from the queue"
        path.write_text(json.dumps({"body": "whole"}))
        assert channel._get("jobs") == {"body": "whole"}
        assert not path.exists()


@ours_and_stock_failing("kombu serves message names in text order: 10000 < 9999")
def test_messages_are_served_oldest_first_when_the_clock_gains_a_digit(
    home: Path, transport: str
) -> None:
    with connect(home, transport) as connection:
        for sent in (99_999, 100_000, 100_001, 9_999, 10_000):
            name = f"{sent}_{uuid.uuid4()}.jobs.msg"
            (queue_folder(home) / name).write_text(json.dumps({"body": sent}))
        served = [connection.default_channel._get("jobs")["body"] for _ in range(5)]
        assert served == [9_999, 10_000, 99_999, 100_000, 100_001]


def test_the_embedded_worker_app_and_the_client_use_this_transport(home: Path) -> None:
    settings = Settings.for_home(home)
    client = TrainlogClient(settings)
    try:
        for celery in (create_app(settings), client.celery):
            with celery.connection_for_write() as connection:
                assert isinstance(connection.default_channel, Channel)
    finally:
        client.close()


def test_a_file_that_never_becomes_a_message_is_set_aside(
    home: Path, channel: Any, caplog: pytest.LogCaptureFixture
) -> None:
    broken = message_file(home, age=UNFINISHED_GRACE_SECONDS + 5)
    broken.write_text('{"body": "cut off')
    stale = time.time() - UNFINISHED_GRACE_SECONDS - 5
    os.utime(broken, (stale, stale))
    channel._put("jobs", {"body": "next"})
    delivered = []
    with caplog.at_level(logging.ERROR):
        while True:
            try:
                delivered.append(channel._get("jobs"))
            except Empty:
                break
    assert delivered == [{"body": "next"}]
    rejected = embedded_folders(Settings.for_home(home))["rejected"] / broken.name
    record = json.loads(rejected.read_text())
    assert record["message"] == '{"body": "cut off' and record["queue"] == "jobs"
    assert "not a kombu message" in record["reason"]
    assert broken.name in caplog.text
    health = check_all(Settings.for_home(home))
    assert health["broker"]["ok"] and not health["undeliverable"]["ok"]
    assert "1 message(s) set aside" in health["undeliverable"]["detail"]


def test_a_send_leaves_no_partial_or_temporary_file(home: Path, channel: Any) -> None:
    channel._put("jobs", {"body": "x" * 100_000})
    names = os.listdir(queue_folder(home))
    assert len(names) == 1 and names[0].endswith(".jobs.msg")
    assert json.loads((queue_folder(home) / names[0]).read_text()) == {"body": "x" * 100_000}


def test_abandoned_temporary_files_are_removed_but_not_a_send_in_progress(home: Path) -> None:
    folder = queue_folder(home)
    folder.mkdir(parents=True)
    abandoned, in_progress = folder / f"{TEMPORARY_PREFIX}a", folder / f"{TEMPORARY_PREFIX}b"
    abandoned.write_text("{")
    in_progress.write_text("{")
    stale = time.time() - UNFINISHED_GRACE_SECONDS - 5
    os.utime(abandoned, (stale, stale))
    assert remove_abandoned_writes(folder) == 1
    assert not abandoned.exists() and in_progress.exists()


def _send(home: Path, count: int) -> None:
    with connect(home) as connection:
        queue = connection.SimpleQueue("jobs")
        for number in range(count):
            queue.put({"number": number, "padding": "p" * 20_000}, serializer="json")
        queue.close()


def _take(home: Path, taken: Any, stop: Any) -> None:
    numbers: list[int] = []
    with connect(home) as connection:
        queue = connection.SimpleQueue("jobs")
        while True:
            try:
                message = queue.get(timeout=0.5)
            except Empty:
                if stop.is_set():
                    break
                continue
            numbers.append(message.payload["number"])
            message.ack()
        queue.close()
    taken.put(numbers)


def test_concurrent_senders_and_takers_deliver_each_message_once(home: Path) -> None:
    count, senders, takers = 300, 2, 2
    context = multiprocessing.get_context("fork")
    taken, stop = context.Queue(), context.Event()
    with connect(home) as connection:
        connection.SimpleQueue("jobs").close()  # declared before anyone sends
    processes = [context.Process(target=_take, args=(home, taken, stop)) for _ in range(takers)]
    processes += [context.Process(target=_send, args=(home, count)) for _ in range(senders)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + 60
    for process in processes[takers:]:
        process.join(timeout=60)
    while list(queue_folder(home).glob("*.msg")) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    received = [number for _ in range(takers) for number in taken.get(timeout=30)]
    for process in processes[:takers]:
        process.join(timeout=30)
    assert sorted(received) == sorted(list(range(count)) * senders)
    assert not list(queue_folder(home).glob(f"{TEMPORARY_PREFIX}*"))


def _bind_again_and_again(home: Path, stop: Any) -> None:
    with connect(home) as connection:
        channel = connection.default_channel
        table = channel._exchange_file("jobs")
        while not stop.is_set():
            table.unlink(missing_ok=True)
            channel._queue_bind("jobs", "jobs", None, "jobs")


def test_a_sender_never_reads_an_exchange_file_being_created(home: Path) -> None:
    """kombu's own transport fails this ~100 times in 3 s on the development machine."""
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    binder = context.Process(target=_bind_again_and_again, args=(home, stop))
    failures, reads = [], 0
    with connect(home) as connection:
        channel = connection.default_channel
        binder.start()
        try:
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                try:
                    channel.get_table("jobs")
                    reads += 1
                except ValueError as error:
                    failures.append(error)
        finally:
            stop.set()
            binder.join(timeout=30)
    assert reads > 1000 and not failures


def test_a_removed_queue_folder_is_made_again_by_takers_and_senders(
    home: Path, channel: Any, caplog: pytest.LogCaptureFixture
) -> None:
    folder = queue_folder(home)
    shutil.rmtree(folder)
    with caplog.at_level(logging.ERROR), pytest.raises(Empty):
        channel._get("jobs")
    assert folder.is_dir() and "was removed while in use" in caplog.text
    assert channel._size("jobs") == 0
    shutil.rmtree(folder)
    channel._put("jobs", {"body": "after the reset"})
    assert channel._get("jobs") == {"body": "after the reset"}


def test_a_worker_goes_on_after_its_queue_folder_is_removed(home: Path) -> None:
    settings = Settings.for_home(home)
    client = TrainlogClient(settings)
    worker = WorkerProcess(settings, name="reset")
    try:
        with worker:
            assert client.run("ping", timeout=60)["pong"] is True
            shutil.rmtree(queue_folder(home))
            time.sleep(1)  # several polls meet the missing folder
            assert worker.process is not None and worker.process.poll() is None
            assert client.run("ping", timeout=60)["pong"] is True
    finally:
        client.close()
    assert "was removed while in use" in worker.log_path.read_text()


def fresh_queue() -> Queue:
    """A queue named for one test: kombu keeps the bindings it declared in a process-wide
    state, and would not write them again into the next test's broker folder."""
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    return Queue(name, Exchange(name), name)


def publish(connection: Connection, queue: Queue, body: dict[str, Any]) -> None:
    with connection.Producer() as producer:
        producer.publish(
            body, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
        )


def test_a_message_is_claimed_until_acked_and_a_dead_takers_claims_come_back(
    home: Path,
) -> None:
    jobs = fresh_queue()
    claims = embedded_folders(Settings.for_home(home))["processed"] / owner_name()
    with connect(home) as connection:
        publish(connection, jobs, {"n": 1})
        publish(connection, jobs, {"n": 2})
        held: list[Any] = []
        with connection.Consumer(jobs, callbacks=[lambda _body, m: held.append(m)]):
            connection.drain_events(timeout=2)
            connection.drain_events(timeout=2)
            assert sorted(m.payload["n"] for m in held) == [1, 2]
            assert len(list(claims.iterdir())) == 2 and not list(queue_folder(home).iterdir())
            held[0].ack()
            assert len(list(claims.iterdir())) == 1
            # the taker dies here: its claim folder is what a SIGKILL leaves
            dead = claims.with_name(f"{claims.name.split('-')[0]}-999999999-1")
            claims.rename(dead)
            held[1].channel.qos._delivered.clear()  # and it cannot restore anything itself
    processed = embedded_folders(Settings.for_home(home))["processed"]
    assert recover_claims(processed, queue_folder(home)) == 1
    assert not dead.exists()
    with connect(home) as connection:
        assert connection.default_channel._get(jobs.name)["body"] is not None


def test_a_no_ack_consumer_leaves_no_claim(home: Path) -> None:
    jobs = fresh_queue()
    with connect(home) as connection:
        publish(connection, jobs, {"n": 1})
        with connection.Consumer(jobs, callbacks=[lambda _body, _m: None], no_ack=True):
            connection.drain_events(timeout=2)
    processed = embedded_folders(Settings.for_home(home))["processed"]
    assert not [path for path in processed.rglob("*") if path.is_file()]


def test_unacked_messages_go_back_to_the_queue_when_the_channel_closes(home: Path) -> None:
    jobs = fresh_queue()
    with connect(home) as connection:
        publish(connection, jobs, {"n": 1})
        with connection.Consumer(jobs, callbacks=[lambda _body, _m: None]):
            connection.drain_events(timeout=2)
    processed = embedded_folders(Settings.for_home(home))["processed"]
    assert not [path for path in processed.rglob("*") if path.is_file()]
    assert len(list(queue_folder(home).glob(f"*.{jobs.name}.msg"))) == 1


def test_owners_are_alive_only_while_their_process_runs() -> None:
    assert owner_alive(owner_name())
    assert not owner_alive(owner_name().rsplit("-", 2)[0] + "-999999999-1")
    assert not owner_alive("0123456789ab-1-1")  # another boot: none of its processes run


def test_jobs_held_by_a_sigkilled_embedded_worker_are_done_after_a_restart(home: Path) -> None:
    settings = Settings.for_home(home)
    stores = Stores(settings)
    stores.initialize()
    client = TrainlogClient(settings)
    payloads = [session_payload(500 + n) for n in range(40)]
    worker = WorkerProcess(settings, name="victim").start()
    for payload in payloads:
        client.send("save_session", payload)
    wait_for_sessions(stores, 5, timeout=60)
    worker.kill()
    processed = embedded_folders(settings)["processed"]
    held = [path for path in processed.rglob("*.msg")]
    assert held, "the killed worker held no job"
    assert stores.sessions.count() < len(payloads)
    with WorkerProcess(settings, name="rescuer") as rescuer:
        wait_for_sessions(stores, len(payloads), timeout=120)
    client.close()
    assert_saved_once(stores, settings, payloads)
    assert "put back" in rescuer.log_path.read_text()
    stores.close()
