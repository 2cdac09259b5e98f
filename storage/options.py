"""How the text of one `TRAINLOG_*` variable is read: each parser takes the variable's name and
text and returns the value, or a ConfigurationError naming the variable and saying what it
must be (a number that is not finite, a limit of 0, a table that does not exist)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from storage.errors import ConfigurationError
from storage.tables import TABLES
from storage.zones import is_time_zone

Parser = Callable[[str, str], Any]


@dataclass(frozen=True)
class Option:
    parse: Parser
    default: Any
    meaning: str


def text(name: str, raw: str) -> str:
    """Any text but a NUL, and no bytes that are not UTF-8 (Python keeps those as lone
    surrogates, which a database URL, a log line or a JSON value cannot encode)."""
    if "\x00" in raw:
        raise ConfigurationError(f"{name} holds a NUL character")
    if not raw.isascii() and any("\udc80" <= char <= "\udcff" for char in raw):
        raise ConfigurationError(f"{name} holds bytes that are not UTF-8 text")
    return raw


def url(name: str, raw: str) -> str:
    """A URL with a scheme whose host part parses; which schemes work is for the layer that
    uses it to say. A password holding '/', '#' or '?' cuts a URL short where the library
    that reads it would fail or print it: it must be percent-encoded."""
    scheme, separator, _ = text(name, raw).partition("://")
    if not separator or not scheme or not scheme.replace("+", "").replace("-", "").isalnum():
        raise ConfigurationError(f"{name} is not a URL (scheme://...): {redacted(raw)}")
    for piece in raw.split(";"):  # kombu's failover list: url;url
        _check_host_part(name, piece.strip())
    return raw


def _check_host_part(name: str, piece: str) -> None:
    """One URL's credentials and host parse as its reader will parse them. A list of hosts
    (`h1:1,h2:2`, MongoDB) is left to its reader, as is a piece without a scheme (Celery's
    `cache+memcached://h1:1;h2:2/`)."""
    if "://" not in piece:
        return
    try:
        parts = urlsplit(piece)
        if "," not in parts.netloc:
            parts.port  # noqa: B018 (reading it checks it)
    except ValueError as error:
        raise ConfigurationError(
            f"{name} is not a usable URL ({_without_values(error)}): {redacted(piece)}; a "
            "password holding '/', '#', '?' or '@' must be percent-encoded ('#' as %23)"
        ) from None
    if parts.netloc and "@" in parts.path + parts.fragment:
        raise ConfigurationError(
            f"{name} has an '@' after its host: {redacted(piece)}; a password holding '/', '#' "
            "or '?' must be percent-encoded ('#' as %23)"
        )


def whole(low: int, high: int) -> Parser:
    """A whole number from `low` to `high`."""

    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigurationError(f"{name}={raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise ConfigurationError(f"{name}={raw!r} must be {low}-{high}")
        return value

    return parse


def number(*, most: float) -> Parser:
    """A finite number above 0 and at most `most` (nan and inf are refused)."""

    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationError(f"{name}={raw!r} is not a number") from None
        if not math.isfinite(value) or not 0 < value <= most:
            raise ConfigurationError(
                f"{name}={raw!r} must be a finite number above 0 and at most {most:g}"
            )
        return value

    return parse


def zone(name: str, raw: str) -> str:
    if not is_time_zone(raw):
        raise ConfigurationError(f"{name}={raw!r} is not an IANA timezone (e.g. Europe/Berlin)")
    return raw


def flower_user(name: str, raw: str) -> str:
    if ":" in raw or not raw.strip():
        raise ConfigurationError(f"{name} must be a user name without ':' (basic auth)")
    return text(name, raw)


def password(name: str, raw: str) -> str:
    return text(name, raw)


def flag(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word not in ("1", "0", "true", "false", "yes", "no"):
        raise ConfigurationError(f"{name} must be true or false, not {raw!r}")
    return word in ("1", "true", "yes")


def backends(name: str, raw: str) -> dict[str, str]:
    """'table=csv|sql, ...'; `*=sql` places every table (named ones override it)."""
    placements: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        table, _, backend = (piece.strip() for piece in item.partition("="))
        if backend not in ("csv", "sql"):
            raise ConfigurationError(f"{name}: {item!r} must look like 'table=csv' or 'table=sql'")
        if table != "*" and table not in TABLES:
            raise ConfigurationError(
                f"{name}: there is no table {table!r}; tables: {', '.join(sorted(TABLES))}"
            )
        if table != "*" and backend == "csv" and not TABLES[table].movable:
            raise ConfigurationError(f"{name}: {table} is always in SQL (it cannot be {item!r})")
        placements[table] = backend
    return placements


def redacted(raw: str) -> str:
    """A value as an error shows it: a URL without its credentials, nor anything before an
    '@' of a value that only looks like one (`postgresql:/user:pass@host/db`)."""
    _, separator, rest = raw.partition("://")
    if separator and rest.startswith("/"):  # no host, so no credentials: a file's path
        return raw[:120]
    if separator:
        return shown_url(raw)[:120]
    if "@" in raw:
        return repr("…@" + raw.rsplit("@", 1)[-1])[:120]
    return repr(raw[:120])


SECRET_QUERY_WORDS = ("password", "passwd", "pwd", "secret", "token", "key")


def shown_url(raw: str) -> str:
    """A URL as a log line or a report shows it: without its credentials, and with the value
    of any query parameter whose name says it is secret (`?password=`, `sslpassword=`,
    `access_token=`) replaced by ***."""
    scheme, separator, rest = raw.partition("://")
    if not separator:
        return raw
    place, _, query = rest.rsplit("@", 1)[-1].partition("?")
    if not query:
        return f"{scheme}://{place}"
    shown = []
    for pair in query.split("&"):
        key, equals, _ = pair.partition("=")
        secret = any(word in key.lower() for word in SECRET_QUERY_WORDS)
        shown.append(f"{key}{equals}***" if secret and equals else pair)
    return f"{scheme}://{place}?{'&'.join(shown)}"


def _without_values(error: ValueError) -> str:
    """urllib's reason, less the value it quotes (a port that is in fact a password)."""
    return str(error).split(" as ", 1)[0].split(":", 1)[0]
