"""The one settings object: read once from `TRAINLOG_*` variables, then passed down explicitly.
Every setting is one entry of OPTIONS: its default, what it means and how its text is read;
`trainlog doctor --settings` and docs/configuration.md show that table."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from storage.cores import usable_cores
from storage.errors import ConfigurationError
from storage.options import (
    Option,
    backends,
    flag,
    flower_user,
    number,
    password,
    text,
    url,
    whole,
    zone,
)

PREFIX = "TRAINLOG_"
MAX_EVENT_FLUSH_MS = 10_000
MAX_WORKER_CONCURRENCY = 64
DAY = 86_400

# name: how it is read, its default and meaning. A default of None means "derived" (see its
# meaning); the few checks that involve two settings are in `_check_together`.
OPTIONS: dict[str, Option] = {
    "home": Option(
        text, ".trainlog", "base folder for every embedded default (relative to the working dir)"
    ),
    "broker_url": Option(
        url, None, "Celery broker URL; unset = embedded filesystem broker under the home"
    ),
    "result_backend": Option(
        url, None, "result backend; unset = the Redis broker's URL, else SQLite"
    ),
    "database_url": Option(url, None, "SQLAlchemy URL; unset = sqlite file <home>/trainlog.sqlite"),
    "data_dir": Option(text, None, "CSV folder; unset = <home>/data"),
    "export_dir": Option(text, None, "session JSON folder; unset = <home>/exports"),
    "import_dir": Option(
        text, None, "the only tree import_sessions may read; unset = <home>/imports"
    ),
    "timezone": Option(zone, "UTC", "IANA timezone of the beat schedule"),
    "lock_timeout": Option(
        number(most=3600), 10.0, "seconds to wait for a CSV or session lock before LockTimeout"
    ),
    "task_soft_time_limit": Option(
        whole(1, DAY), 240, "seconds before a task gets SoftTimeLimitExceeded"
    ),
    "task_time_limit": Option(
        whole(1, DAY), 300, "hard task time limit in seconds (the worker kills the child)"
    ),
    "visibility_timeout": Option(
        whole(1, 7 * DAY), 330, "Redis redelivery delay in seconds; must exceed task_time_limit"
    ),
    "result_expires": Option(
        whole(0, 365 * DAY), 86400, "seconds task results are kept (0 = for ever)"
    ),
    "max_retries": Option(whole(0, 100), 5, "retries of a transient failure before the task fails"),
    "retry_backoff_max": Option(
        whole(1, DAY), 60, "cap in seconds of the exponential retry backoff"
    ),
    "nightly_rollup_hour": Option(
        whole(0, 23), 2, "hour (0-23, in TRAINLOG_TIMEZONE) of the nightly rollup"
    ),
    "recompute_delay": Option(
        whole(0, DAY),
        2,
        "seconds a metric recompute waits after the first change of a burst (0 = at once); "
        "every change of that athlete in the meantime joins the same job",
    ),
    "recompute_group": Option(
        whole(1, 1_000_000),
        200,
        "athletes a full recompute or rollup computes together when activities are in SQL: "
        "its memory grows with the group, not with every athlete at once (CSV: one group, as "
        "its reads take whole months whatever the athletes)",
    ),
    "ctl_days": Option(number(most=3650), 42.0, "chronic training load time constant in days"),
    "atl_days": Option(number(most=3650), 7.0, "acute training load time constant in days"),
    "max_payload_bytes": Option(
        whole(1024, 1 << 30), 1_000_000, "largest accepted session payload, in bytes of JSON"
    ),
    "catalog_refresh": Option(
        whole(0, DAY),
        60,
        "seconds a process reuses the exercise catalog it read to fill empty muscle groups: "
        "a seed update or a user's catalog edit reaches every worker within this (0 = always read)",
    ),
    "worker_concurrency": Option(
        whole(1, MAX_WORKER_CONCURRENCY),
        None,
        "pool processes of a worker; unset = usable CPU cores (affinity, capped by a cgroup "
        "CPU quota) + 1: a save waits on its fsyncs ~40% of "
        "its time, and one process more than cores keeps them busy meanwhile",
    ),
    "event_flush_ms": Option(
        whole(0, MAX_EVENT_FLUSH_MS),
        50,
        "longest a worker holds a task event to publish it with others; Flower shows a task's "
        "state that much later (0 = every loop turn, as stock Celery)",
    ),
    "flower_user": Option(flower_user, "admin", "Flower basic-auth user"),
    "flower_password": Option(
        password, None, "Flower basic-auth password; Flower refuses to start without one"
    ),
    "web_user": Option(flower_user, "admin", "web console login user"),
    "web_password": Option(
        password, None, "web console login password; `trainlog web` refuses to start without one"
    ),
    "web_secret": Option(
        password,
        None,
        "key signing the web console's session cookie; unset = made once, 0600, in <home>",
    ),
    "web_secure_cookie": Option(
        flag, False, "send the console's cookie over HTTPS only (set it behind a TLS proxy)"
    ),
    "flower_url": Option(
        url, None, "Flower's address, linked from the web console's operations page"
    ),
    "table_backends": Option(
        backends,
        MappingProxyType({}),
        "overrides of table placement, e.g. 'activities=sql,goals=sql', or '*=sql'",
    ),
}
FOLDERS = {"data_dir": "data", "export_dir": "exports", "import_dir": "imports"}


def default_concurrency() -> int:
    """The cores this process may use (its CPU affinity, capped by a cgroup CPU quota such as
    `docker run --cpus`), plus one."""
    return usable_cores() + 1


@dataclass(frozen=True)
class Settings:
    """Every knob of trainlog (see OPTIONS); build with `load_settings()` or
    `Settings.for_home(path)`."""

    home: Path
    broker_url: str | None
    result_backend: str | None
    database_url: str
    data_dir: Path
    export_dir: Path
    import_dir: Path
    timezone: str
    lock_timeout: float
    task_soft_time_limit: int
    task_time_limit: int
    visibility_timeout: int
    result_expires: int
    max_retries: int
    retry_backoff_max: int
    nightly_rollup_hour: int
    recompute_delay: int
    recompute_group: int
    ctl_days: float
    atl_days: float
    max_payload_bytes: int
    catalog_refresh: int
    worker_concurrency: int
    event_flush_ms: int
    flower_user: str
    flower_password: str | None
    web_user: str
    web_password: str | None
    web_secret: str | None
    web_secure_cookie: bool
    flower_url: str | None
    table_backends: Mapping[str, str]

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
        return self.table_backends.get(table, self.table_backends.get("*", default))


def variable(name: str) -> str:
    return PREFIX + name.upper()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the environment once; every problem is a ConfigurationError naming the variable."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, option in OPTIONS.items():
        raw = env.get(variable(name))
        values[name] = option.default if raw in (None, "") else option.parse(variable(name), raw)
    home = Path(values["home"]).expanduser().absolute()
    values["home"] = home
    values["worker_concurrency"] = values["worker_concurrency"] or default_concurrency()
    values["database_url"] = values["database_url"] or f"sqlite:///{home / 'trainlog.sqlite'}"
    _check_folder("home", home)
    for folder, below in FOLDERS.items():
        values[folder] = Path(values[folder] or home / below).expanduser().absolute()
        _check_folder(folder, values[folder])
    _check_together(values)
    return Settings(**values)


def _check_together(values: Mapping[str, Any]) -> None:
    if values["task_soft_time_limit"] > values["task_time_limit"]:
        raise ConfigurationError(
            f"{variable('task_soft_time_limit')} ({values['task_soft_time_limit']}s) must not "
            f"exceed {variable('task_time_limit')} ({values['task_time_limit']}s): the hard "
            "limit would kill a job before it is warned"
        )
    if values["visibility_timeout"] <= values["task_time_limit"]:
        raise ConfigurationError(
            f"{variable('visibility_timeout')} ({values['visibility_timeout']}s) must exceed "
            f"{variable('task_time_limit')} ({values['task_time_limit']}s), or Redis hands a "
            "running task to a second worker"
        )
    if values["recompute_delay"] * 2 > values["visibility_timeout"]:
        raise ConfigurationError(
            f"{variable('recompute_delay')} ({values['recompute_delay']}s) must stay under half "
            f"of {variable('visibility_timeout')} ({values['visibility_timeout']}s): a worker "
            "holds the delayed job unacknowledged meanwhile"
        )


def _check_folder(name: str, folder: Path) -> None:
    """A folder setting must name a folder, or one that can be made: no file in the way. (A
    folder that cannot be written is reported when used: a transient error that is retried.)"""
    existing = folder
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        in_the_way = not existing.is_dir()
    except OSError:  # unreadable: the first use reports it, naming the folder
        return
    if in_the_way:
        where = "" if existing == folder else f" ({existing} is in the way)"
        raise ConfigurationError(
            f"{variable(name)}={folder} is a file, not a folder{where}", field=name
        )


def settings_env(settings: Settings) -> dict[str, str]:
    """The TRAINLOG_* variables that make `load_settings()` rebuild `settings` in a child."""
    env: dict[str, str] = {}
    for name in OPTIONS:
        value = getattr(settings, name)
        if value is None:
            continue
        if name == "table_backends":
            value = ",".join(f"{table}={backend}" for table, backend in value.items())
        env[variable(name)] = str(value)
    return env
