"""One frozen settings object, read from the environment names fixed in the contract.

The worker and the connector read only these variables (plus their own command-line
flags), so the same environment drives them under the CLI, docker compose and the tests.
Secrets (tenant keys, webhook secrets) are held in `Secret` so that they never appear in
a repr or a log line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from streams.errors import ConfigError

DEFAULT_RETRY_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass(frozen=True)
class Secret:
    """A value that is never shown: its repr is a fixed mask."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__


def parse_map(raw: str, name: str) -> dict[str, list[str]]:
    """Parse `key=value;key=value` into key -> values (a key may be listed several times)."""
    out: dict[str, list[str]] = {}
    for chunk in raw.split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        key, sep, value = chunk.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{name}: expected key=value, got {chunk!r}")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def _single(raw: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[-1] for k, v in raw.items()}


def _tenant_keys(raw: str) -> dict[str, Secret]:
    """`BATCHWIRE_TENANT_KEYS`: `tenant=key;...` or the path of a file with one pair a line."""
    text = raw
    if raw and "=" not in raw and Path(raw).is_file():
        text = ";".join(Path(raw).read_text().splitlines())
    return {t: Secret(k) for t, k in _single(parse_map(text, "BATCHWIRE_TENANT_KEYS")).items()}


def _floats(raw: str, name: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in raw.split(",") if x.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}: expected seconds separated by commas, got {raw!r}") from exc


def _retry_schedule(raw: str) -> tuple[float, ...]:
    """`BATCHWIRE_RETRY_SCHEDULE`: the delay before each attempt, the first one's 0 (a
    callback is tried as soon as it comes: another first delay would be ignored)."""
    name = "BATCHWIRE_RETRY_SCHEDULE"
    schedule = _floats(raw, name) or DEFAULT_RETRY_SCHEDULE
    if schedule[0] != 0 or not all(0 <= delay < math.inf for delay in schedule):
        raise ConfigError(f"{name}: expected 0 then delays of 0 s or more, got {raw!r}")
    return schedule


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = "localhost:9092"
    allowed_tenants: frozenset[str] = frozenset()
    tenant_keys: Mapping[str, Secret] = field(default_factory=dict)
    target_urls: Mapping[str, str] = field(default_factory=dict)
    max_items: int = 1_000_000
    max_active_batches: int = 0  # 0 = no limit
    topic_prefix: str = ""
    web_port: int = 6066
    data_dir: Path = Path("./data")
    handler_modules: tuple[str, ...] = ()
    webhook_secrets: Mapping[str, tuple[Secret, ...]] = field(default_factory=dict)
    callback_allow_nets: tuple[str, ...] = ()
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        g = env.get
        return cls(
            kafka_bootstrap=g("BATCHWIRE_KAFKA_BOOTSTRAP", "") or "localhost:9092",
            allowed_tenants=frozenset(
                t.strip() for t in g("BATCHWIRE_ALLOWED_TENANTS", "").split(";") if t.strip()
            ),
            tenant_keys=_tenant_keys(g("BATCHWIRE_TENANT_KEYS", "")),
            target_urls=_single(parse_map(g("BATCHWIRE_TARGET_URLS", ""), "BATCHWIRE_TARGET_URLS")),
            max_items=_int(env, "BATCHWIRE_MAX_ITEMS", 1_000_000),
            max_active_batches=_int(env, "BATCHWIRE_MAX_ACTIVE_BATCHES", 0),
            topic_prefix=g("BATCHWIRE_TOPIC_PREFIX", ""),
            web_port=_int(env, "BATCHWIRE_WEB_PORT", 6066),
            data_dir=Path(g("BATCHWIRE_DATA_DIR", "") or "./data"),
            handler_modules=tuple(
                m.strip() for m in g("BATCHWIRE_HANDLER_MODULES", "").split(",") if m.strip()
            ),
            webhook_secrets={
                t: tuple(Secret(s) for s in secrets)
                for t, secrets in parse_map(
                    g("BATCHWIRE_WEBHOOK_SECRETS", ""), "BATCHWIRE_WEBHOOK_SECRETS"
                ).items()
            },
            callback_allow_nets=tuple(
                n.strip()
                for n in g("BATCHWIRE_CALLBACK_ALLOW_NETS", "").replace(";", ",").split(",")
                if n.strip()
            ),
            retry_schedule=_retry_schedule(g("BATCHWIRE_RETRY_SCHEDULE", "")),
        )

    def topic(self, name: str) -> str:
        """The full topic name for a contract name such as `batchwire.items`."""
        return f"{self.topic_prefix}{name}"
