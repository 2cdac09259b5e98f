"""Which queues a channel consumes with acknowledgements. A no-ack consumer (a remote-control
reply, say) never acks, so a transport must not keep its messages as unacknowledged: Redis
would restore them, and deliver them again, after the visibility timeout, and the embedded
broker would keep them in its claim folder."""

from __future__ import annotations

from typing import Any


class AckedQueues:
    """Mixed in before a kombu virtual Channel; `acked(queue)` says how `queue` is consumed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._acked_queues: set[str] = set()
        super().__init__(*args, **kwargs)

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self._acked_queues.discard(queue)
        else:
            self._acked_queues.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)  # type: ignore[misc]

    def acked(self, queue: str) -> bool:
        """True when a consumer of `queue` acks what it takes (not for `basic_get`)."""
        return queue in self._acked_queues
