"""kombu's filesystem transport (the embedded broker), except that no reader sees half a message.

Stock kombu creates a message file under its final ``.msg`` name and only then writes it, and
a consumer takes the file (moves it away), reads it and parses it without waiting for the
writer. A poll that lands between the two reads an empty or partial file: the consumer raises
``JSONDecodeError`` and the message, already taken, is gone. Here a message is written under a
hidden temporary name and renamed into place, so a ``.msg`` file is always whole (so is a new
exchange file, which kombu also creates empty before writing it); and a file that still does
not parse (a stock kombu producer caught mid-write) is put back for the next poll, or, once
older than `UNFINISHED_GRACE_SECONDS`, set aside in the ``rejected_folder``, with an error in
the log, instead of breaking the consumer. A message is
taken by renaming it into the processed folder (stock kombu moves it to the system's temporary
folder, a copy when that is another file system), so exactly one consumer wins.

Stock kombu deletes a message as it hands it over, so a worker SIGKILLed with jobs in hand
loses them. Here a message taken for a consumer that acks stays in the taker's claim folder
(``processed/<owner>/``, see claims.py) until it is acked, rejected or put back, and a worker
start puts back the claims of takers that are gone. ``store_processed`` is not supported.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.log import get_logger
from kombu.transport import filesystem as kombu_filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

from workers.brokers.acks import AckedQueues
from workers.brokers.claims import owner_name
from workers.brokers.messages import SafeMessage, queue_of, record_text, set_aside_record

logger = get_logger(__name__)
UNFINISHED_GRACE_SECONDS = 10.0  # a stock writer finishes in one write call; this is lavish
TEMPORARY_PREFIX = ".incoming-"  # no queue's file name pattern matches it (nor "*.msg")
# where unreadable files go unless the `rejected_folder` option says (kombu's folders default
# to relative names too); not in the processed folder, which holds claims
REJECTED_FOLDER = "rejected"


class Channel(AckedQueues, kombu_filesystem.Channel):
    Message = SafeMessage

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._claims: dict[str, Path] = {}  # delivery tag -> its file in our claim folder
        super().__init__(*args, **kwargs)

    # kombu's own classes disagree on the name of the message argument (payload / message)
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        folder = Path(self.data_folder_out)
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        if not folder.is_dir():
            recreate_queue_folder(folder)
        temporary = folder / f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}"
        try:
            temporary.write_bytes(str_to_bytes(dumps(payload)))
            os.replace(temporary, folder / name)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise kombu_filesystem.ChannelError(
                f"cannot add a message to {folder}: {error.strerror}"
            ) from None

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        """kombu creates a missing exchange file empty and then writes it, and a sender
        reading the table in between fails to parse it; here the file appears holding an
        empty table, and kombu's own update (under its lock) adds the binding."""
        table = self._table_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        if not table.exists():
            temporary = table.with_name(f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}")
            try:
                temporary.write_bytes(str_to_bytes(dumps([])))
                os.link(temporary, table)  # fails if another binder created it meanwhile
            except FileExistsError:
                pass
            except OSError as error:
                raise kombu_filesystem.ChannelError(
                    f"cannot create {table}: {error.strerror}"
                ) from None
            finally:
                temporary.unlink(missing_ok=True)
        super()._queue_bind(exchange, routing_key, pattern, queue)

    def _table_file(self, exchange: str) -> Path:
        """The file of an exchange's bindings, where every kombu version keeps it; a name that
        could leave the control folder is refused (kombu 5.7 checks, older ones do not)."""
        if (
            not exchange
            or any(part in exchange for part in ("/", "\\", "\x00"))
            or (exchange.startswith("."))
        ):
            raise kombu_filesystem.ChannelError(f"invalid exchange name: {exchange!r}")
        return Path(self.control_folder) / f"{exchange}.exchange"

    def set_aside(self, message: Any, reason: str) -> None:
        """Keep a message no worker can run in the rejected folder, with the reason; the caller
        then acks it, which drops its claim."""
        record = set_aside_record(message, reason, queue_of(message))
        claimed = self._claims.get(message.delivery_tag)
        name = claimed.name if claimed is not None else f"{uuid.uuid4()}.msg"
        self._write_rejected(name, record_text(record).encode())

    def _write_rejected(self, name: str, data: bytes) -> None:
        folder = Path(self.transport_options.get("rejected_folder", REJECTED_FOLDER))
        temporary = folder / f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(data)
            os.replace(temporary, folder / name)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise kombu_filesystem.ChannelError(
                f"cannot set aside message {name} in {folder}: {error.strerror}"
            ) from None

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        super().basic_ack(delivery_tag, multiple)
        self._release(delivery_tag)

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        super().basic_reject(delivery_tag, requeue)  # a requeue goes through _restore
        self._release(delivery_tag)

    def _restore(self, message: Any) -> None:
        """Back in the queue as a new file (at shutdown, or on a reject), then unclaimed: a
        crash in between delivers it twice, never not at all."""
        super()._restore(message)
        self._release(message.delivery_tag)

    def _release(self, delivery_tag: str) -> None:
        claimed = self._claims.pop(delivery_tag, None)
        if claimed is not None:
            claimed.unlink(missing_ok=True)

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        folder = Path(self.data_folder_in)
        taken_folder = Path(self.processed_folder) / owner_name()
        wanted = f"{queue}.msg"
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            recreate_queue_folder(folder)
            raise Empty() from None
        for name in sorted(names, key=sent_order):
            if name.partition(".")[2] != wanted:
                continue
            if not self._take(folder / name, taken_folder / name):
                continue  # another consumer took it first
            taken = taken_folder / name
            message = self._read_taken(folder / name, taken)
            if message is None:
                continue
            properties = message.get("properties")
            tag = properties.get("delivery_tag") if isinstance(properties, dict) else None
            if self.acked(queue) and isinstance(tag, str):
                self._claims[tag] = taken  # kept until acked: a SIGKILL does not lose it
            else:  # a consumer that never acks (a remote-control reply, say)
                taken.unlink(missing_ok=True)
            return message
        raise Empty()

    def _size(self, queue: str) -> int:
        try:
            return int(super()._size(queue))
        except FileNotFoundError:
            return 0  # the folder was removed: made again at the next poll

    def _purge(self, queue: str) -> int:
        try:
            return int(super()._purge(queue))
        except FileNotFoundError:
            return 0

    def _take(self, queued: Path, taken: Path) -> bool:
        """Rename the file into the processed folder: False if another consumer was first."""
        for _ in range(2):
            try:
                os.rename(queued, taken)
                return True
            except FileNotFoundError:
                if not queued.exists():
                    return False
                taken.parent.mkdir(parents=True, exist_ok=True)  # removed or never made
            except OSError as error:
                raise kombu_filesystem.ChannelError(
                    f"cannot move message file {queued.name} to {taken.parent}: {error.strerror}"
                ) from None
        raise kombu_filesystem.ChannelError(f"cannot move message file {queued} to {taken}")

    def _read_taken(self, queued: Path, taken: Path) -> Any | None:
        """The message in a file just taken; None when it is not whole (put back, or set
        aside when too old to be still being written)."""
        try:
            raw = taken.read_bytes()
            age = time.time() - taken.stat().st_mtime
        except OSError as error:
            raise kombu_filesystem.ChannelError(
                f"cannot read message file {taken}: {error.strerror}"
            ) from None
        try:
            message = loads(bytes_to_str(raw))
        except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested too deep
            message = None
        if isinstance(message, dict):
            return message
        if age < UNFINISHED_GRACE_SECONDS:
            try:
                os.rename(taken, queued)  # a writer is still at it: read it at the next poll
            except OSError as error:
                raise kombu_filesystem.ChannelError(
                    f"cannot put back message file {taken}: {error.strerror}"
                ) from None
            return None
        reason = f"its file is not a kombu message ({len(raw)} bytes, {age:.0f} s old)"
        record = {
            "reason": reason,
            "queue": taken.name.partition(".")[2].removesuffix(".msg"),
            "setAsideAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "message": raw.decode("utf-8", errors="backslashreplace"),
        }
        self._write_rejected(taken.name, record_text(record).encode())
        taken.unlink(missing_ok=True)
        logger.error("message file %s %s: set aside in the rejected folder", taken.name, reason)
        return None


def recreate_queue_folder(folder: Path) -> None:
    """Make the queue folder again after someone removed it under a running worker or
    producer (a reset of the home, say), so both go on instead of stopping. The messages that
    were in it are gone: logged as an error. If it cannot be made, the caller's next step on
    it reports why."""
    try:
        folder.mkdir(parents=True)
    except OSError:
        return  # made by another process first, or not makeable: see the docstring
    logger.error(
        "the queue folder %s was removed while in use: made it again "
        "(messages that were queued in it are lost)",
        folder,
    )


def sent_order(name: str) -> tuple[int, str]:
    """Oldest message first. kombu names a message ``<ms since boot>_<uuid>.<queue>.msg`` and
    serves names in text order, in which ``10000_`` comes before ``9999_``: whenever the count
    gains a digit (2.8 h, 28 h, 11.6 days of uptime) newer messages were served first. After a
    reboot the count starts again, so messages left from before it wait until the queue empties."""
    sent, _, _ = name.partition("_")
    return (int(sent) if sent.isdigit() else -1, name)


class Transport(kombu_filesystem.Transport):
    Channel = Channel


def remove_abandoned_writes(folder: Path) -> int:
    """Delete the temporary files of producers killed mid-send (older than the grace period,
    so a send in progress is left alone); returns how many went."""
    removed = 0
    for path in folder.glob(f"{TEMPORARY_PREFIX}*"):
        try:
            if time.time() - path.stat().st_mtime > UNFINISHED_GRACE_SECONDS:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # its producer finished (renamed it) meanwhile
    return removed
