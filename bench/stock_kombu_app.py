"""The trainlog app on kombu's stock Redis transport: bench/redelivery.py's baseline."""

from __future__ import annotations

from typing import Any

from workers.app import create_app


def __getattr__(name: str) -> Any:
    if name == "app":
        app = create_app()
        app.conf.broker_transport = None  # the redis:// scheme picks kombu's own transport
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
