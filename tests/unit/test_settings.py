"""Settings from the contract's environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.errors import ConfigError
from streams.settings import DEFAULT_RETRY_SCHEDULE, Secret, Settings


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.kafka_bootstrap == "localhost:9092"
    assert s.allowed_tenants == frozenset()  # empty: no tenant may submit
    assert s.max_items == 1_000_000 and s.max_active_batches == 0
    assert s.retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert s.topic("batchwire.items") == "batchwire.items"


def test_every_variable() -> None:
    s = Settings.from_env(
        {
            "BATCHWIRE_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
            "BATCHWIRE_ALLOWED_TENANTS": "a; b ;",
            "BATCHWIRE_TENANT_KEYS": "a=ka;b=shared;c=shared",
            "BATCHWIRE_TARGET_URLS": "a=http://127.0.0.1:9/x",
            "BATCHWIRE_MAX_ITEMS": "10",
            "BATCHWIRE_MAX_ACTIVE_BATCHES": "1",
            "BATCHWIRE_TOPIC_PREFIX": "dev.",
            "BATCHWIRE_WEB_PORT": "7000",
            "BATCHWIRE_DATA_DIR": "/tmp/bw",
            "BATCHWIRE_HANDLER_MODULES": "m1, m2",
            "BATCHWIRE_WEBHOOK_SECRETS": "a=whsec_one;a=whsec_two",
            "BATCHWIRE_CALLBACK_ALLOW_NETS": "127.0.0.0/8;::1/128",
            "BATCHWIRE_RETRY_SCHEDULE": "0, 0.5,2",
        }
    )
    assert s.allowed_tenants == {"a", "b"}
    assert {t: k.value for t, k in s.tenant_keys.items()} == {
        "a": "ka",
        "b": "shared",
        "c": "shared",
    }
    assert s.target_urls == {"a": "http://127.0.0.1:9/x"}
    assert (s.max_items, s.max_active_batches, s.web_port) == (10, 1, 7000)
    assert s.topic("batchwire.items") == "dev.batchwire.items"
    assert s.data_dir == Path("/tmp/bw")
    assert s.handler_modules == ("m1", "m2")
    assert [x.value for x in s.webhook_secrets["a"]] == ["whsec_one", "whsec_two"]
    assert s.callback_allow_nets == ("127.0.0.0/8", "::1/128")
    assert s.retry_schedule == (0.0, 0.5, 2.0)


def test_tenant_keys_from_a_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("acme=k1\nglobex=k2\n")
    s = Settings.from_env({"BATCHWIRE_TENANT_KEYS": str(keys)})
    assert {t: k.value for t, k in s.tenant_keys.items()} == {"acme": "k1", "globex": "k2"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BATCHWIRE_MAX_ITEMS", "many", "expected an integer"),
        ("BATCHWIRE_RETRY_SCHEDULE", "0,soon", "expected seconds"),
        ("BATCHWIRE_RETRY_SCHEDULE", "5,300", "expected 0 then delays"),
        ("BATCHWIRE_RETRY_SCHEDULE", "0,-5", "expected 0 then delays"),
        ("BATCHWIRE_RETRY_SCHEDULE", "0,inf", "expected 0 then delays"),
        ("BATCHWIRE_RETRY_SCHEDULE", "0,nan", "expected 0 then delays"),
        ("BATCHWIRE_TARGET_URLS", "no-equals-sign", "expected key=value"),
    ],
)
def test_malformed_values_are_config_errors(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}: {message}"):
        Settings.from_env({name: value})


def test_secrets_never_show() -> None:
    s = Settings.from_env({"BATCHWIRE_TENANT_KEYS": "acme=super-secret-key"})
    assert "super-secret-key" not in repr(s) and "super-secret-key" not in str(s.tenant_keys)
    assert repr(Secret("x")) == str(Secret("x")) == "Secret('****')"
