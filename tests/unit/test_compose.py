"""docker-compose.yml is valid: checked by `docker compose config` when the plugin exists,
and always by its structure."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_SETTINGS = {
    "BATCHWIRE_KAFKA_BOOTSTRAP",
    "BATCHWIRE_ALLOWED_TENANTS",
    "BATCHWIRE_TENANT_KEYS",
    "BATCHWIRE_TARGET_URLS",
    "BATCHWIRE_MAX_ITEMS",
    "BATCHWIRE_MAX_ACTIVE_BATCHES",
    "BATCHWIRE_TOPIC_PREFIX",
    "BATCHWIRE_WEB_PORT",
    "BATCHWIRE_DATA_DIR",
    "BATCHWIRE_HANDLER_MODULES",
    "BATCHWIRE_WEBHOOK_SECRETS",
    "BATCHWIRE_CALLBACK_ALLOW_NETS",
    "BATCHWIRE_RETRY_SCHEDULE",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_services_and_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "worker", "connector"}
    assert re.fullmatch(r"apache/kafka:3\.9\.\d+", services["kafka"]["image"])
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("worker", "connector"):
        svc = services[name]
        assert svc["build"] == "."
        assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"
        env = svc["environment"]
        assert env["BATCHWIRE_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert set(env) <= CONTRACT_SETTINGS, set(env) - CONTRACT_SETTINGS
    assert services["worker"]["command"][0] == "worker"
    assert services["connector"]["command"][0] == "connector"
    assert (ROOT / "Dockerfile").is_file()


def test_docker_compose_config_accepts_it() -> None:
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "compose", "version"], capture_output=True).returncode
    ):
        pytest.skip("the docker compose plugin is not installed here")
    proc = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
