"""Failed jobs, recorded where an operator can list them (`trainlog failures`)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from storage.errors import ErrorCode, PersistenceError, ValidationError
from storage.json_values import check_arguments
from storage.stores import Stores
from storage.tables import TABLES

MAX_ARGUMENT_CHARS = 8_000
MASK = "***"
# a field whose name holds one of these (case, "_" and "-" ignored) holds a secret: the token
# columns, and what a producer may misspell or add (access_token, apiKey, client-secret, ...)
SECRET_NAME = re.compile(
    r"token|secret|passw(or)?d|apikey|credential|privatekey|authorization|cookie"
)


def is_secret_name(name: Any) -> bool:
    return isinstance(name, str) and bool(SECRET_NAME.search(re.sub(r"[_\-\s]", "", name).lower()))


def redact(value: Any) -> Any:
    """Secrets never reach the failure log: every value under a secret-looking name."""
    if isinstance(value, dict):
        return {k: (MASK if is_secret_name(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def shorten(arguments: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(arguments, default=str)
    if len(text) <= MAX_ARGUMENT_CHARS:
        return json.loads(text)  # type: ignore[no-any-return]
    return {"truncated": text[:MAX_ARGUMENT_CHARS]}


def redact_rows(table: Any, rows: Any) -> Any:
    """Rows for a secret table keep only their key: whatever a producer named its fields."""
    if not isinstance(table, str) or table not in TABLES or not TABLES[table].secret:
        return rows
    key = TABLES[table].key
    if not isinstance(rows, list):
        return MASK
    return [
        {k: (v if k in key else MASK) for k, v in row.items()} if isinstance(row, dict) else MASK
        for row in rows
    ]


def stored_arguments(args: Any, kwargs: Any) -> dict[str, Any]:
    """The arguments as the failure log keeps them: secrets masked, long ones cut, and ones it
    cannot hold (nested too deep, NaN, broken text: often why the job was refused) left out,
    saying why."""
    arguments: dict[str, Any] = {"args": list(args or []), "kwargs": dict(kwargs or {})}
    try:
        check_arguments(arguments["args"], arguments["kwargs"])
    except ValidationError as error:
        return {"omitted": error.message}
    positional, named = arguments["args"], arguments["kwargs"]
    if len(positional) >= 2:  # upsert_rows(table, rows)
        positional[1] = redact_rows(positional[0], positional[1])
    if "rows" in named:
        table = named.get("table", positional[0] if positional else None)
        named["rows"] = redact_rows(table, named["rows"])
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
    if isinstance(error, PersistenceError):
        code, text = error.code, str(error)
    else:  # a bug: the error's class says which
        code, text = ErrorCode.INTERNAL, f"{type(error).__name__}: {error}"
    row = {
        "failureId": uuid.uuid4().hex,
        "taskId": _storable(task_id),
        "taskName": _storable(task_name) or "?",
        "arguments": stored_arguments(args, kwargs),
        "errorCode": _storable(str(code)),
        "error": _storable(text[:2000]),
        "failedAt": datetime.now(UTC),
    }
    return stores.repository("task_failures").add(row)


def _storable(text: str | None) -> str | None:
    """Text any database takes: broken Unicode and NUL replaced."""
    if text is None:
        return None
    return text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "?")


def list_failures(stores: Stores, limit: int = 50) -> list[dict[str, Any]]:
    rows = list(stores.repository("task_failures").iterate())
    rows.sort(key=lambda row: row["failedAt"], reverse=True)
    return rows[:limit]
