"""One error hierarchy for every layer: a code, a transient flag, and the data a caller needs."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    CONFLICT = "CONFLICT"
    VALIDATION = "VALIDATION"
    LOCK_TIMEOUT = "LOCK_TIMEOUT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    UNAVAILABLE = "UNAVAILABLE"
    MIGRATION = "MIGRATION"
    CONFIGURATION = "CONFIGURATION"
    SEED_DATA = "SEED_DATA"
    CORRUPT = "CORRUPT"
    TIMEOUT = "TIMEOUT"
    INTERNAL = "INTERNAL"


class PersistenceError(Exception):
    """Base of every error trainlog raises on purpose; tasks retry it when `transient`.

    Its one argument, what Celery stores as a failed job's `exc_message` and what every
    producer (Python, Node, …) reads, is `CODE: what is wrong`; built again from that text
    (as a Python client with trainlog rebuilds it), the code is not repeated."""

    code: ErrorCode = ErrorCode.INTERNAL
    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        key: Any = None,
        path: str | None = None,
        field: str | None = None,
    ) -> None:
        message = message.removeprefix(f"{self.code}: ")
        super().__init__(f"{self.code}: {message}")
        self.message = message
        self.table = table
        self.key = key
        self.path = path
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used in task failures and CLI output."""
        data: dict[str, Any] = {"code": str(self.code), "message": self.message}
        for name in ("table", "key", "path", "field"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value if isinstance(value, str | int | float) else str(value)
        return data

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        """Across processes (the pool hands failures to the worker) with all its fields."""
        fields = {name: getattr(self, name) for name in ("table", "key", "path", "field")}
        return (_rebuild, (type(self), self.message, fields))


class NotFound(PersistenceError):
    code = ErrorCode.NOT_FOUND


class AlreadyExists(PersistenceError):
    code = ErrorCode.ALREADY_EXISTS


class Conflict(PersistenceError):
    code = ErrorCode.CONFLICT


class ValidationError(PersistenceError):
    code = ErrorCode.VALIDATION


class LockTimeout(PersistenceError):
    code = ErrorCode.LOCK_TIMEOUT
    transient = True


class DeadlineExceeded(PersistenceError):
    code = ErrorCode.DEADLINE_EXCEEDED
    transient = True


class Unavailable(PersistenceError):
    code = ErrorCode.UNAVAILABLE
    transient = True


class MigrationError(PersistenceError):
    code = ErrorCode.MIGRATION


class ConfigurationError(PersistenceError):
    code = ErrorCode.CONFIGURATION


class SeedDataError(PersistenceError):
    code = ErrorCode.SEED_DATA


class CorruptFile(PersistenceError):
    code = ErrorCode.CORRUPT


class JobTimeout(PersistenceError):
    """A producer waited for a job's result for longer than it would: the job may still run
    (it is not cancelled); `key` is its task id."""

    code = ErrorCode.TIMEOUT


def _rebuild(kind: type[PersistenceError], message: str, fields: dict[str, Any]) -> Any:
    return kind(message, **fields)
