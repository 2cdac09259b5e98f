"""The one settings object: read once from `TRAINLOG_*` variables, then passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.cores import usable_cores
from storage.errors import ConfigurationError

PREFIX = "TRAINLOG_"
MAX_EVENT_FLUSH_MS = 10_000
MAX_WORKER_CONCURRENCY = 64

# name: (default, meaning). The single place every default lives; `trainlog doctor --settings`
# and docs/configuration.md print this table. A default of None means "derived" (see meaning).
DEFAULTS: dict[str, tuple[Any, str]] = {
    "home": (".trainlog", "base folder for every embedded default (relative to the working dir)"),
    "broker_url": (None, "Celery broker URL; unset = embedded filesystem broker under the home"),
    "result_backend": (None, "result backend; unset = the Redis broker's URL, else SQLite"),
    "database_url": (None, "SQLAlchemy URL; unset = sqlite file <home>/trainlog.sqlite"),
    "data_dir": (None, "CSV folder; unset = <home>/data"),
    "export_dir": (None, "session JSON folder; unset = <home>/exports"),
    "import_dir": (None, "the only tree import_sessions may read; unset = <home>/imports"),
    "timezone": ("UTC", "IANA timezone of the beat schedule"),
    "lock_timeout": (10.0, "seconds to wait for a CSV lock before LockTimeout"),
    "task_soft_time_limit": (240, "seconds before a task gets SoftTimeLimitExceeded"),
    "task_time_limit": (300, "hard task time limit in seconds (the worker kills the child)"),
    "visibility_timeout": (330, "Redis redelivery delay in seconds; must exceed task_time_limit"),
    "result_expires": (86400, "seconds task results are kept"),
    "max_retries": (5, "retries of a transient failure before the task fails"),
    "retry_backoff_max": (60, "cap in seconds of the exponential retry backoff"),
    "nightly_rollup_hour": (2, "hour (0-23, in TRAINLOG_TIMEZONE) of the nightly rollup"),
    "recompute_delay": (
        2,
        "seconds a metric recompute waits after the first change of a burst (0 = at once); "
        "every change of that athlete in the meantime joins the same job",
    ),
    "ctl_days": (42.0, "chronic training load time constant in days"),
    "atl_days": (7.0, "acute training load time constant in days"),
    "max_payload_bytes": (1_000_000, "largest accepted session payload, in bytes of JSON"),
    "catalog_refresh": (
        60,
        "seconds a process reuses the exercise catalog it read to fill empty muscle groups: "
        "a seed update or a user's catalog edit reaches every worker within this (0 = always read)",
    ),
    "worker_concurrency": (
        None,
        "pool processes of a worker; unset = usable CPU cores (affinity, capped by a cgroup "
        "CPU quota) + 1: a save waits on its fsyncs ~40% of "
        "its time, and one process more than cores keeps them busy meanwhile",
    ),
    "event_flush_ms": (
        50,
        "longest a worker holds a task event to publish it with others; Flower shows a task's "
        "state that much later (0 = every loop turn, as stock Celery)",
    ),
    "flower_user": ("admin", "Flower basic-auth user"),
    "flower_password": (None, "Flower basic-auth password; Flower refuses to start without one"),
    "table_backends": ("", "overrides of table placement, e.g. 'activities=sql,goals=sql'"),
}


def default_concurrency() -> int:
    """The cores this process may use (its CPU affinity, capped by a cgroup CPU quota such as
    `docker run --cpus`), plus one."""
    return usable_cores() + 1


@dataclass(frozen=True)
class Settings:
    """Every knob of trainlog; build with `load_settings()` or `Settings.for_home(path)`."""

    home: Path
    broker_url: str | None
    result_backend: str | None
    database_url: str
    data_dir: Path
    export_dir: Path
    import_dir: Path
    timezone: str = "UTC"
    lock_timeout: float = 10.0
    task_soft_time_limit: int = 240
    task_time_limit: int = 300
    visibility_timeout: int = 330
    result_expires: int = 86400
    max_retries: int = 5
    retry_backoff_max: int = 60
    nightly_rollup_hour: int = 2
    recompute_delay: int = 2
    ctl_days: float = 42.0
    atl_days: float = 7.0
    max_payload_bytes: int = 1_000_000
    catalog_refresh: int = 60
    worker_concurrency: int = field(default_factory=default_concurrency)
    event_flush_ms: int = 50
    flower_user: str = "admin"
    flower_password: str | None = None
    table_backends: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_home(cls, home: Path | str, **overrides: Any) -> Settings:
        """Embedded defaults rooted at `home` (tests and the demo use this)."""
        return load_settings({PREFIX + "HOME": str(home)}).with_(**overrides)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def broker_is_embedded(self) -> bool:
        return self.broker_url is None or self.broker_url.startswith("filesystem://")

    @property
    def broker_folder(self) -> Path:
        return self.home / "broker"

    def backend_for(self, table: str, default: str) -> str:
        return self.table_backends.get(table, default)


def _parse_concurrency(name: str, raw: str) -> int:
    value = _parse_int(name, raw)
    if not 1 <= value <= MAX_WORKER_CONCURRENCY:
        raise ConfigurationError(
            f"{PREFIX}{name.upper()}={raw!r} must be 1-{MAX_WORKER_CONCURRENCY} pool processes"
        )
    return value


def _parse_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{PREFIX}{name.upper()}={raw!r} is not a number") from None
    if value <= 0:
        raise ConfigurationError(f"{PREFIX}{name.upper()}={raw!r} must be greater than 0")
    return value


def _parse_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{PREFIX}{name.upper()}={raw!r} is not a whole number") from None
    if value < 0:
        raise ConfigurationError(f"{PREFIX}{name.upper()}={raw!r} must not be negative")
    return value


def _parse_timezone(name: str, raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"{PREFIX}{name.upper()}={raw!r} is not an IANA timezone (e.g. Europe/Berlin)"
        ) from None
    return raw


def _parse_backends(name: str, raw: str) -> dict[str, str]:
    placements: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        table, _, backend = item.partition("=")
        if backend not in ("csv", "sql"):
            raise ConfigurationError(
                f"{PREFIX}{name.upper()}: {item!r} must look like 'table=csv' or 'table=sql'"
            )
        placements[table.strip()] = backend
    return placements


_PARSERS: dict[type | str, Callable[[str, str], Any]] = {float: _parse_float, int: _parse_int}


def _read(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(PREFIX + name.upper())
    return raw if raw not in (None, "") else None


def _check_home(home: Path) -> None:
    """The home must be a folder, or creatable: no file in the way. It holds the SQLite files
    and the embedded broker, so nothing runs without it. (The other folders are checked when
    used: an export folder that cannot be written is a transient error the save retries.)"""
    existing = home
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        in_the_way = not existing.is_dir()
    except OSError:  # unreadable: the first use reports it, naming the folder
        return
    if in_the_way:
        where = "" if existing == home else f" ({existing} is in the way)"
        raise ConfigurationError(
            f"{PREFIX}HOME={home} is a file, not a folder{where}", field="home"
        )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the environment once; every problem is a ConfigurationError naming the variable."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, (default, _meaning) in DEFAULTS.items():
        raw = _read(env, name)
        if raw is None:
            values[name] = default
        elif name == "timezone":
            values[name] = _parse_timezone(name, raw)
        elif name == "table_backends":
            values[name] = _parse_backends(name, raw)
        elif name == "worker_concurrency":
            values[name] = _parse_concurrency(name, raw)
        elif isinstance(default, bool | str) or default is None:
            values[name] = raw
        else:
            values[name] = _PARSERS[type(default)](name, raw)
    if isinstance(values["table_backends"], str):
        values["table_backends"] = _parse_backends("table_backends", values["table_backends"])
    home = Path(values["home"]).expanduser().absolute()
    values["home"] = home
    values["worker_concurrency"] = values["worker_concurrency"] or default_concurrency()
    values["database_url"] = values["database_url"] or f"sqlite:///{home / 'trainlog.sqlite'}"
    for folder, sub in (("data_dir", "data"), ("export_dir", "exports"), ("import_dir", "imports")):
        values[folder] = Path(values[folder] or home / sub).expanduser().absolute()
    _check_home(home)
    if values["nightly_rollup_hour"] > 23:
        raise ConfigurationError(f"{PREFIX}NIGHTLY_ROLLUP_HOUR must be 0-23")
    if values["event_flush_ms"] > MAX_EVENT_FLUSH_MS:
        raise ConfigurationError(
            f"{PREFIX}EVENT_FLUSH_MS={values['event_flush_ms']} must be 0-{MAX_EVENT_FLUSH_MS}: "
            "monitors would show tasks that long after they ran"
        )
    if values["visibility_timeout"] <= values["task_time_limit"]:
        raise ConfigurationError(
            f"{PREFIX}VISIBILITY_TIMEOUT ({values['visibility_timeout']}s) must exceed "
            f"{PREFIX}TASK_TIME_LIMIT ({values['task_time_limit']}s), or Redis hands a running "
            "task to a second worker"
        )
    if values["recompute_delay"] * 2 > values["visibility_timeout"]:
        raise ConfigurationError(
            f"{PREFIX}RECOMPUTE_DELAY ({values['recompute_delay']}s) must stay under half of "
            f"{PREFIX}VISIBILITY_TIMEOUT ({values['visibility_timeout']}s): a worker holds the "
            "delayed job unacknowledged meanwhile"
        )
    return Settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The TRAINLOG_* variables that make `load_settings()` rebuild `settings` in a child."""
    env: dict[str, str] = {}
    for name in DEFAULTS:
        value = getattr(settings, name)
        if value is None:
            continue
        if name == "table_backends":
            value = ",".join(f"{table}={backend}" for table, backend in value.items())
        env[PREFIX + name.upper()] = str(value)
    return env
