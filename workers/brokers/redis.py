"""kombu's Redis transport, except that taking a message and recording it as unacked is atomic.

Stock kombu takes a message with BRPOP and records it in the ``unacked`` hash only once the
reply has been read and parsed, which can wait while the worker's event loop is busy. A
worker SIGKILLed in that gap loses the message for good (bench/redelivery.py measures how
often). Here one Lua script pops the message and records it, so every taken message is either
still queued or in ``unacked``, where kombu's visibility-timeout sweep restores it.

Lua cannot block, so an empty pop is followed by a pause before the next try, doubling from
2 ms up to `idle_poll_interval`: a job sent just after the last one is taken within a few ms,
an idle worker asks Redis `1 / idle_poll_interval` times a second, and a job sent to a worker
idle for long waits up to `idle_poll_interval` longer. In a worker the pause is a timer of its event
loop; without one (a plain `drain_events`) it is a BLPOP on a key nothing writes, which Redis
ends only on its 100 ms clock tick (`hz 10`).

Messages and events sent outside the event loop go through one redis client per channel,
where kombu builds a new one (with its ~170 response callbacks) for each.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from queue import Empty
from time import monotonic, time
from typing import Any
from uuid import uuid4

from kombu.log import get_logger
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from workers.brokers.acks import AckedQueues
from workers.brokers.messages import (
    SafeMessage,
    queue_of,
    record_text,
    set_aside_record,
    unreadable,
)

logger = get_logger(__name__)
FIRST_PAUSE = 0.002  # seconds after the first empty pop; doubles up to idle_poll_interval

NOT_AN_ENVELOPE = "its envelope has no properties with a delivery tag (not a kombu envelope)"
# KEYS: the queue lists to try in order, then unacked_index, unacked, undeliverable.
# ARGV: the time to index the message by, then one flag per queue key: "1" = record as unacked.
# Returns {queue key, message, status[, delivery tag]} or false when every list is empty.
POP_AND_RECORD = r"""
local count = #KEYS - 3
for i = 1, count do
  local item = redis.call('RPOP', KEYS[i])
  if item then
    if ARGV[i + 1] ~= '1' then
      return {KEYS[i], item, 'taken'}
    end
    local ok, message = pcall(cjson.decode, item)
    if not ok then
      -- cjson refuses an escaped lone surrogate, which Python's json reads: only the
      -- properties are needed here, so read them with every surrogate escape blanked
      ok, message = pcall(cjson.decode, (string.gsub(item, '\\u[dD][89abcdefABCDEF]%x%x', '?')))
    end
    local props = ok and type(message) == 'table' and message['properties']
    local info = type(props) == 'table' and props['delivery_info']
    local tag = type(props) == 'table' and props['delivery_tag']
    if type(info) ~= 'table' or type(tag) ~= 'string' then
      local record = cjson.encode({
        reason = 'NOT_AN_ENVELOPE',
        queue = KEYS[i], setAsideAt = ARGV[1], message = item})
      redis.call('LPUSH', KEYS[count + 3], record)
      return {KEYS[i], item, 'undeliverable'}
    end
    local exchange = cjson.encode(info['exchange'] or '')
    local routing_key = cjson.encode(info['routing_key'] or '')
    local entry = '[' .. item .. ',' .. exchange .. ',' .. routing_key .. ']'
    redis.call('ZADD', KEYS[count + 1], ARGV[1], tag)
    redis.call('HSET', KEYS[count + 2], tag, entry)
    return {KEYS[i], item, 'recorded', tag}
  end
end
return false
""".replace("NOT_AN_ENVELOPE", NOT_AN_ENVELOPE)


class QoS(kombu_redis.QoS):
    """Skips the second write of a message the pop script already recorded as unacked."""

    channel: Channel

    def append(self, message: Any, delivery_tag: str) -> None:
        if self.channel.take_recorded(delivery_tag):
            virtual.QoS.append(self, message, delivery_tag)
        else:
            super().append(message, delivery_tag)


class Channel(AckedQueues, kombu_redis.Channel):
    """Takes messages with POP_AND_RECORD instead of BRPOP; everything else is kombu's."""

    QoS = QoS
    Message = SafeMessage
    idle_poll_interval = 0.05
    idle_wait_key = "trainlog.idle-wait"  # never written: waiting on it is a server-side sleep
    undeliverable_key = "trainlog.undeliverable"  # dead letters: messages no worker can run
    from_transport_options = (  # type: ignore[assignment]
        *kombu_redis.Channel.from_transport_options,
        "idle_poll_interval",
        "undeliverable_key",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._recorded: set[str] = set()
        self._pending: str | None = None
        self._idle = False
        self._idle_until: float | None = None
        self._empty_pops = 0
        self._commands: Any = None
        super().__init__(*args, **kwargs)

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """The channel's one client for commands outside the event loop (it takes a pooled
        connection per command, so one serves every caller): a cheaper send for producers and
        cheaper task events for workers (docs/benchmarks.md)."""
        if client:
            yield client
            return
        if self._commands is None:
            self._commands = self._create_client()
        yield self._commands

    def set_aside(self, message: Any, reason: str) -> None:
        """Keep a message no worker can run in the dead-letter list, with the reason; the
        caller then acks it (a crash in between keeps it twice, never not at all)."""
        if getattr(message, "kept", False):
            return
        record = record_text(set_aside_record(message, reason, queue_of(message)))
        with self.conn_or_acquire() as client:
            client.lpush(self._key(self.undeliverable_key), record)

    def take_recorded(self, delivery_tag: str) -> bool:
        if delivery_tag in self._recorded:
            self._recorded.discard(delivery_tag)
            return True
        return False

    def _brpop_start(self, timeout: float | None = None) -> None:
        if not self.ack_emulation:
            return super()._brpop_start(timeout)
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return None
        if self._idle and self._pausing():
            return None
        connection = self.client.connection
        self._in_poll = connection
        self._brpop_sent_at = monotonic()  # type: ignore[assignment]
        if self._idle:
            self._pending = "wait"
            connection.send_command("BLPOP", self._key(self.idle_wait_key), self.idle_poll_interval)
            return None
        pairs = [
            (self._q_for_pri(queue, pri), "1" if self.acked(queue) else "0")
            for pri in self.priority_steps
            for queue in queues
        ]
        keys = [key for key, _ in pairs]
        keys += [self.unacked_index_key, self.unacked_key, self.undeliverable_key]
        self._pending = "pop"
        connection.send_command(
            "EVAL",
            POP_AND_RECORD,
            len(keys),
            *(self._key(key) for key in keys),
            repr(time()),
            *(flag for _, flag in pairs),
        )
        return None

    def _pausing(self) -> bool:
        """In an event loop: True while the pause after an empty pop lasts (a timer wakes the
        loop when it ends); False once it is over, or without a loop (BLPOP waits instead)."""
        hub = getattr(self.connection, "hub", None)
        if hub is None:
            return False
        now = monotonic()
        if self._idle_until is None:
            pause = min(FIRST_PAUSE * 2 ** min(self._empty_pops, 16), self.idle_poll_interval)
            self._idle_until = now + pause
            hub.call_later(pause, _wake)
        if now < self._idle_until:
            return True
        self._idle = False
        self._idle_until = None
        return False

    def _brpop_read(self, **options: Any) -> bool:
        pending, self._pending = self._pending, None
        if pending is None:
            return bool(super()._brpop_read(**options))
        try:
            try:
                reply = self.client.parse_response(
                    self.client.connection, "EVAL" if pending == "pop" else "BLPOP", **options
                )
            except self.connection_errors:
                self.client.connection.disconnect()  # the next start reconnects
                raise
            if pending == "pop":
                self._idle = not reply
                self._empty_pops = self._empty_pops + 1 if self._idle else 0
            else:  # the pause is over: pop next
                self._idle = False
            if pending != "pop" or not reply:
                raise Empty()
            return self._deliver_popped(*(bytes_to_str(part) for part in reply))
        finally:
            self._in_poll = None  # type: ignore[assignment]
            self._flush_brpop_reauth()

    def _deliver_popped(self, key: str, item: str, status: str, tag: str = "") -> bool:
        queue = key[len(self.global_keyprefix or "") :].rsplit(self.sep, 1)[0]
        self._queue_cycle.rotate(queue)
        if status == "undeliverable":  # set aside by the script: delivered only to be answered
            payload = unreadable(item, NOT_AN_ENVELOPE, uuid4().hex, queue, kept=True)
            self._recorded.add(payload["properties"]["delivery_tag"])
        else:
            try:
                payload = loads(item)
            except Exception as error:  # cjson read it, Python's json does not
                reason = f"its envelope is not JSON Python can read ({error})"[:300]
                payload = unreadable(item, reason, tag or uuid4().hex, queue, kept=False)
            if status == "recorded":
                self._recorded.add(payload["properties"]["delivery_tag"])
        self.connection._deliver(payload, queue)
        return True

    def _key(self, key: str) -> str:
        return f"{self.global_keyprefix or ''}{key}"


def _wake() -> None:
    """A timer's callback: firing is the point, it ends the event loop's wait."""


class Transport(kombu_redis.Transport):
    """The Redis transport with Channel above; selected by `broker_transport` in the config."""

    Channel = Channel
    hub: Any = None  # the worker's event loop, once registered with one

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        self.hub = loop
        super().register_with_event_loop(connection, loop)
