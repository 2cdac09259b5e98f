"""Failed jobs, recorded where an operator can list them (`trainlog failures`)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from storage.errors import ValidationError
from storage.stores import Stores
from storage.values import check_nesting

MAX_ARGUMENT_CHARS = 8_000
SECRET_FIELDS = {"accessToken", "refreshToken"}


def redact(value: Any) -> Any:
    """Secrets never reach the failure log."""
    if isinstance(value, dict):
        return {k: ("***" if k in SECRET_FIELDS else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def shorten(arguments: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(arguments, default=str)
    if len(text) <= MAX_ARGUMENT_CHARS:
        return json.loads(text)
    return {"truncated": text[:MAX_ARGUMENT_CHARS]}


def stored_arguments(args: Any, kwargs: Any) -> dict[str, Any]:
    """The arguments as the failure log keeps them: secrets masked, long ones cut, and ones
    nested too deep to walk (a job refused for that very reason) left out."""
    arguments = {"args": list(args or []), "kwargs": kwargs or {}}
    try:
        check_nesting(arguments, "the arguments")
    except ValidationError as error:
        return {"omitted": error.message}
    return shorten(redact(arguments))


def record_failure(
    stores: Stores,
    *,
    task_id: str | None,
    task_name: str,
    args: Any,
    kwargs: Any,
    error: BaseException,
) -> dict[str, Any]:
    code = getattr(error, "code", type(error).__name__)
    row = {
        "failureId": uuid.uuid4().hex,
        "taskId": task_id,
        "taskName": task_name,
        "arguments": stored_arguments(args, kwargs),
        "errorCode": str(code),
        "error": str(error)[:2000],
        "failedAt": datetime.now(UTC),
    }
    return stores.repository("task_failures").add(row)


def list_failures(stores: Stores, limit: int = 50) -> list[dict[str, Any]]:
    rows = list(stores.repository("task_failures").iterate())
    rows.sort(key=lambda row: row["failedAt"], reverse=True)
    return rows[:limit]
