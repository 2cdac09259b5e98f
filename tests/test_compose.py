"""docker-compose.yml: the services the README names, Flower behind auth, one beat; validated by
docker compose itself where it is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_services_and_safety() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "postgres", "migrate", "worker", "beat", "flower", "web"}
    assert "WEB_PASSWORD:?" in str(services["web"]["environment"])
    assert all(port.startswith("127.0.0.1:") for port in services["web"]["ports"])
    assert all("healthcheck" in services[name] for name in ("redis", "postgres", "worker"))
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "FLOWER_PASSWORD:?" in str(services["flower"]["environment"])
    assert all(port.startswith("127.0.0.1:") for port in services["flower"]["ports"])
    assert services["worker"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    redis = services["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"  # queues survive a restart
    assert "redis-data:/data" in redis["volumes"]


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    return None


def test_compose_config_validates() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither docker compose nor docker-compose is installed")
    env = {**os.environ, "TRAINLOG_FLOWER_PASSWORD": "x", "TRAINLOG_WEB_PASSWORD": "y"}
    done = subprocess.run(
        [*command, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    without_password = {k: v for k, v in env.items() if k != "TRAINLOG_FLOWER_PASSWORD"}
    refused = subprocess.run(
        [*command, "config", "-q"], cwd=ROOT, env=without_password, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "TRAINLOG_FLOWER_PASSWORD" in refused.stderr


def test_the_several_hosts_override_shares_only_the_export_folder() -> None:
    override = yaml.safe_load((ROOT / "docker-compose.hosts.yml").read_text())
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in override["services"].items():
        assert name in base["services"]
        assert service["environment"]["TRAINLOG_TABLE_BACKENDS"] == "*=sql"
        mounts = {str(v).split(":")[-1]: v for v in service["volumes"]}
        assert mounts["/var/lib/trainlog"] == "/var/lib/trainlog"  # anonymous: per container
        export_dir = service["environment"]["TRAINLOG_EXPORT_DIR"]
        assert mounts[export_dir].startswith("trainlog-exports:")
    assert set(override["services"]) == {"migrate", "worker", "beat", "flower", "web"}


def test_the_several_hosts_override_validates() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither docker compose nor docker-compose is installed")
    files = ["-f", "docker-compose.yml", "-f", "docker-compose.hosts.yml"]
    env = {**os.environ, "TRAINLOG_FLOWER_PASSWORD": "x", "TRAINLOG_WEB_PASSWORD": "y"}
    done = subprocess.run(
        [*command, *files, "config"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    worker = yaml.safe_load(done.stdout)["services"]["worker"]
    sources = [  # compose v2 writes mappings, docker-compose v1 "source:target:mode" strings
        v.get("source") if isinstance(v, dict) else (v.split(":")[0] if ":" in v else None)
        for v in worker["volumes"]
    ]
    assert "trainlog-data" not in sources and "trainlog-exports" in sources
