"""Settings are read once from TRAINLOG_* variables; every bad value names its variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage.cores import usable_cores
from storage.errors import ConfigurationError
from storage.options import shown_url
from storage.settings import OPTIONS, load_settings
from storage.sql.database import Database
from storage.stores import Stores
from storage.tables import DEFINITIONS
from workers.config import broker_and_backend


def test_nothing_set_means_embedded_defaults(tmp_path: Path) -> None:
    settings = load_settings({"TRAINLOG_HOME": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'trainlog.sqlite'}"
    assert settings.broker_url is None and settings.broker_is_embedded
    assert settings.data_dir == tmp_path / "data" and settings.export_dir == tmp_path / "exports"
    assert settings.timezone == "UTC" and settings.lock_timeout == OPTIONS["lock_timeout"].default
    # one pool process more than the cores this process may use (a save waits on fsyncs)
    assert settings.worker_concurrency == usable_cores() + 1


def test_values_are_parsed(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "TRAINLOG_HOME": str(tmp_path),
            "TRAINLOG_LOCK_TIMEOUT": "2.5",
            "TRAINLOG_BROKER_URL": "redis://localhost:6379/3",
            "TRAINLOG_TIMEZONE": "America/Denver",
            "TRAINLOG_TABLE_BACKENDS": "activities=sql, goals=csv",
            "TRAINLOG_WORKER_CONCURRENCY": "5",
        }
    )
    assert settings.lock_timeout == 2.5 and not settings.broker_is_embedded
    assert settings.worker_concurrency == 5
    assert settings.backend_for("activities", "csv") == "sql"
    assert settings.backend_for("thresholds", "csv") == "csv"


@pytest.mark.parametrize(
    "name, value",
    [
        ("TRAINLOG_LOCK_TIMEOUT", "soon"),
        ("TRAINLOG_LOCK_TIMEOUT", "-1"),
        ("TRAINLOG_TIMEZONE", "Mars/Olympus"),
        ("TRAINLOG_NIGHTLY_ROLLUP_HOUR", "25"),
        ("TRAINLOG_TABLE_BACKENDS", "activities=excel"),
        ("TRAINLOG_TASK_TIME_LIMIT", "900"),
        ("TRAINLOG_RECOMPUTE_DELAY", "-2"),
        ("TRAINLOG_RECOMPUTE_DELAY", "300"),
        ("TRAINLOG_EVENT_FLUSH_MS", "-1"),
        ("TRAINLOG_EVENT_FLUSH_MS", "0.05"),
        ("TRAINLOG_EVENT_FLUSH_MS", "60000"),
        ("TRAINLOG_WORKER_CONCURRENCY", "0"),
        ("TRAINLOG_WORKER_CONCURRENCY", "65"),
        ("TRAINLOG_WORKER_CONCURRENCY", "many"),
        ("TRAINLOG_LOCK_TIMEOUT", "nan"),
        ("TRAINLOG_LOCK_TIMEOUT", "inf"),
        ("TRAINLOG_LOCK_TIMEOUT", "0"),
        ("TRAINLOG_CTL_DAYS", "nan"),
        ("TRAINLOG_ATL_DAYS", "inf"),
        ("TRAINLOG_ATL_DAYS", "-7"),
        ("TRAINLOG_TASK_TIME_LIMIT", "0"),
        ("TRAINLOG_TASK_SOFT_TIME_LIMIT", "301"),
        ("TRAINLOG_TASK_SOFT_TIME_LIMIT", "0"),
        ("TRAINLOG_MAX_PAYLOAD_BYTES", "0"),
        ("TRAINLOG_MAX_RETRIES", "-1"),
        ("TRAINLOG_TABLE_BACKENDS", "activitys=sql"),
        ("TRAINLOG_TABLE_BACKENDS", "training_sessions=csv"),
        ("TRAINLOG_FLOWER_USER", "ad:min"),
        ("TRAINLOG_BROKER_URL", "garbage"),
        ("TRAINLOG_DATABASE_URL", "not a url"),
        ("TRAINLOG_HOME", "a\x00b"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"TRAINLOG_HOME": str(tmp_path), name: value})
    assert name in str(caught.value)


def test_a_file_where_the_home_belongs_names_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for path in (blocker, blocker / "below"):
        with pytest.raises(ConfigurationError) as caught:
            load_settings({"TRAINLOG_HOME": str(path)})
        assert "TRAINLOG_HOME" in str(caught.value) and "not a folder" in str(caught.value)
    assert load_settings({"TRAINLOG_HOME": str(tmp_path / "new")}).home == tmp_path / "new"
    assert not (tmp_path / "new").exists()  # reading the settings creates nothing


@pytest.mark.parametrize(
    "name", ["TRAINLOG_DATA_DIR", "TRAINLOG_EXPORT_DIR", "TRAINLOG_IMPORT_DIR"]
)
def test_a_file_where_a_folder_belongs_names_the_variable(tmp_path: Path, name: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for path in (blocker, blocker / "below"):
        with pytest.raises(ConfigurationError) as caught:
            load_settings({"TRAINLOG_HOME": str(tmp_path / "home"), name: str(path)})
        assert name in str(caught.value) and "not a folder" in str(caught.value)


def test_every_movable_table_on_sql_with_a_star(tmp_path: Path) -> None:
    settings = load_settings(
        {"TRAINLOG_HOME": str(tmp_path), "TRAINLOG_TABLE_BACKENDS": "*=sql, goals=csv"}
    )
    stores = Stores(settings)
    placed = {table.name: stores.backend_of(table.name) for table in DEFINITIONS}
    assert placed["activities"] == placed["daily_metrics"] == placed["tokens"] == "sql"
    assert placed["goals"] == "csv" and placed["training_sessions"] == "sql"
    assert load_settings({"TRAINLOG_HOME": str(tmp_path)}).table_backends == {}


def test_a_sqlite_file_whose_folder_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigurationError) as caught:
        Database(f"sqlite:///{blocker / 'db' / 'trainlog.sqlite'}")
    assert str(blocker / "db") in str(caught.value)


def test_every_setting_is_documented_with_its_default() -> None:
    """docs/configuration.md is what operators read: a new setting must appear there, and a
    default there must be the one the code uses."""
    text = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    rows = {
        line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")
    }
    for name, option in OPTIONS.items():
        default = option.default
        variable = f"`TRAINLOG_{name.upper()}`"
        row = next((line for key, line in rows.items() if variable in key), None)
        assert row is not None, f"{variable} is missing from docs/configuration.md"
        if isinstance(default, int | float) and not isinstance(default, bool):
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            assert f"`{shown}`" in row, f"{variable}: docs give another default"


@pytest.mark.parametrize("name", ["TRAINLOG_BROKER_URL", "TRAINLOG_RESULT_BACKEND"])
@pytest.mark.parametrize(
    "value",
    [
        "redis://:S3cr3t#x@127.0.0.1:1/0",  # '#' unescaped: the rest became a fragment
        "redis://:S3cr3t/x@127.0.0.1:1/0",  # '/' unescaped: the host went into the path
        "redis://:S3cr3t@127.0.0.1:63a9/0",  # a port that is no number
        "redis://:S3cr3t@[::1/0",  # an unclosed IPv6 bracket
        "redis:/:S3cr3t@127.0.0.1/0",  # no '//': not a URL at all
        ":S3cr3t@127.0.0.1/0",
    ],
)
def test_a_malformed_url_is_refused_without_its_password(
    tmp_path: Path, name: str, value: str
) -> None:
    """Celery, kombu and SQLAlchemy would fail on these with the password in their error (a
    'port' that is the password's first part) or connect elsewhere with half of it."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"TRAINLOG_HOME": str(tmp_path), name: value})
    assert name in str(caught.value) and "S3cr3t" not in str(caught.value)


def test_a_database_url_that_does_not_parse_is_shown_without_its_password(tmp_path: Path) -> None:
    for value in ("postgresql+psycopg://u:S3cr3t@db:543a/db", "postgresql:/u:S3cr3t@h/db"):
        with pytest.raises(ConfigurationError) as caught:
            load_settings({"TRAINLOG_HOME": str(tmp_path), "TRAINLOG_DATABASE_URL": value})
        assert "S3cr3t" not in str(caught.value)
    with pytest.raises(ConfigurationError) as caught:  # past the settings, as a caller may
        Database("postgresql+psycopg://u:S3cr3t@db:543a/db")
    assert "S3cr3t" not in str(caught.value) and "TRAINLOG_DATABASE_URL" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRAINLOG_BROKER_URL", "amqp://u:p@h1:5672//;amqp://u:p@h2:5672//"),  # failover
        ("TRAINLOG_BROKER_URL", "redis://h1:6379/0;redis://h2:6379/0"),
        ("TRAINLOG_RESULT_BACKEND", "cache+memcached://127.0.0.1:11211;10.0.0.2:11211/"),
        ("TRAINLOG_RESULT_BACKEND", "mongodb://u:pw@h1:27017,h2:27017/db"),
        ("TRAINLOG_RESULT_BACKEND", "rediss://:p%23w@h:6380/0?ssl_cert_reqs=required"),
        ("TRAINLOG_DATABASE_URL", "sqlite:////srv/deploy@2/trainlog.sqlite"),
        ("TRAINLOG_DATABASE_URL", "postgresql+psycopg://u@/db?host=/var/run/postgresql"),
    ],
)
def test_url_forms_the_libraries_accept_are_accepted(tmp_path: Path, name: str, value: str) -> None:
    settings = load_settings({"TRAINLOG_HOME": str(tmp_path), name: value})
    assert value in (settings.broker_url, settings.result_backend, settings.database_url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://u:S3cr3t@db:5432/x", "postgresql+psycopg://db:5432/x"),
        (
            "postgresql+psycopg://u@db/x?password=S3cr3t&sslmode=require",
            "postgresql+psycopg://db/x?password=***&sslmode=require",
        ),
        ("redis://h:6379/0?socket_timeout=5", "redis://h:6379/0?socket_timeout=5"),
        (
            "postgresql://db/x?sslpassword=S3cr3t&sslkey=/k&application_name=a",
            "postgresql://db/x?sslpassword=***&sslkey=***&application_name=a",
        ),
        ("sqlite:////srv/t.sqlite", "sqlite:////srv/t.sqlite"),
    ],
)
def test_a_shown_url_keeps_no_credential_nor_secret_query_value(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_a_redis_password_in_the_query_is_refused_with_where_it_goes(tmp_path: Path) -> None:
    """redis-py got it twice and every broker connection failed with a TypeError (Celery's
    Redis result backend reads it, so there it is kept)."""
    backend_only = {"TRAINLOG_RESULT_BACKEND": "redis://h:6379/1?password=S3"}
    assert broker_and_backend(load_settings({"TRAINLOG_HOME": str(tmp_path), **backend_only}))
    settings = load_settings(
        {"TRAINLOG_HOME": str(tmp_path), "TRAINLOG_BROKER_URL": "redis://h:6379/0?password=S3"}
    )
    with pytest.raises(ConfigurationError) as caught:
        broker_and_backend(settings)
    assert "user part" in str(caught.value) and "S3" not in str(caught.value)


def test_a_database_password_in_the_query_is_not_shown_by_doctor(
    tmp_path: Path, postgres_url: str
) -> None:
    url = make_url(postgres_url).update_query_dict({"password": "QuerySecret123"})
    environment = {
        **os.environ,
        "TRAINLOG_HOME": str(tmp_path),
        "TRAINLOG_DATABASE_URL": url.render_as_string(hide_password=False),
    }
    environment.pop("TRAINLOG_BROKER_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "workers", "doctor"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert "password=***" in done.stdout, done.stdout + done.stderr
    assert "QuerySecret123" not in done.stdout + done.stderr
