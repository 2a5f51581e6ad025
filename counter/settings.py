"""Service settings, read once from COUNTER_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from counter.errors import ConfigError
from counter.keys import DEFAULT_SHARD_COUNT
from counter.signatures import load_secret

ENV_PREFIX = "COUNTER_"
DAY_S = 24 * 3600


class DeliveryMode(StrEnum):
    """Policy for turning outbox events into POSTs."""

    EVERY = "every"  # one POST per counted message
    LATEST = "latest"  # only the newest waiting total of each (account_id, date)


@dataclass(frozen=True)
class Settings:
    """Every setting of the service. Durations carry their unit in the name."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    redis_url: str | None = None
    data_dir: Path = Path(".data")
    embedded_port: int = 6399
    shard_count: int = DEFAULT_SHARD_COUNT
    dedupe_ttl_seconds: int = 7 * DAY_S
    max_body_bytes: int = 64 * 1024
    body_timeout_seconds: float = 10.0
    max_range_days: int = 366
    redis_timeout_seconds: float = 5.0
    redis_max_connections: int = 256
    webhook_secret: str | None = None

    dispatcher_enabled: bool = True
    daily_total_url: str = "http://127.0.0.1:8081/daily-totals"
    daily_total_secret: str | None = None
    delivery_mode: DeliveryMode = DeliveryMode.EVERY
    delivery_timeout_seconds: float = 10.0
    delivery_concurrency: int = 64
    read_batch_size: int = 256
    retry_base_seconds: float = 0.5
    retry_cap_seconds: float = 300.0
    max_event_age_seconds: float = 3 * DAY_S
    claim_idle_seconds: float = 30.0
    shutdown_grace_seconds: float = 10.0

    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every COUNTER_* variable that is set; the rest keep their defaults.

        Raises ConfigError naming the variable when a value does not parse or is out of range.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, parse in _PARSERS.items():
            variable = ENV_PREFIX + name.upper()
            raw = env.get(variable)
            if raw is None or raw == "":
                continue
            try:
                values[name] = parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{variable}={raw!r} is invalid: {exc}") from exc
        return cls(**values).validated()

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes).validated()

    def validated(self) -> Settings:
        """Return self, or raise ConfigError naming the first variable that is out of range."""
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if not low <= value <= high:  # written so that NaN fails too
                raise ConfigError(
                    f"{ENV_PREFIX}{name.upper()} must be between {low:g} and {high:g}, not {value}"
                )
        _check_url(
            "COUNTER_REDIS_URL", self.redis_url, {"redis", "rediss", "unix"}, "redis://host:6379/0"
        )
        _check_url(
            "COUNTER_DAILY_TOTAL_URL",
            self.daily_total_url,
            {"http", "https"},
            "https://receiver.example/daily-totals",
        )
        for variable, secret in (
            ("COUNTER_WEBHOOK_SECRET", self.webhook_secret),
            ("COUNTER_DAILY_TOTAL_SECRET", self.daily_total_secret),
        ):
            if secret is not None:
                load_secret(secret, variable)
        return self


# Inclusive bounds of every numeric setting. The upper bounds catch typos, such as a
# value in milliseconds where seconds are meant, before they reach Redis or asyncio.
RANGES: dict[str, tuple[float, float]] = {
    "embedded_port": (0, 65535),
    "port": (1, 65535),
    "workers": (1, 64),
    "shard_count": (1, 1024),
    "dedupe_ttl_seconds": (1, 10 * 365 * DAY_S),
    "max_body_bytes": (1, 16 * 1024 * 1024),
    "body_timeout_seconds": (0.01, 3600),
    "max_range_days": (1, 3660),
    "redis_timeout_seconds": (0.01, 3600),
    "redis_max_connections": (1, 100_000),
    "delivery_timeout_seconds": (0.01, 3600),
    "delivery_concurrency": (1, 10_000),
    "read_batch_size": (1, 100_000),
    "retry_base_seconds": (0.001, 3600),
    "retry_cap_seconds": (0.001, DAY_S),
    "max_event_age_seconds": (1, 365 * DAY_S),
    "claim_idle_seconds": (0.1, DAY_S),
    "shutdown_grace_seconds": (0, 3600),
}


def _check_url(variable: str, url: str | None, schemes: set[str], example: str) -> None:
    if url is None:
        return
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018 - reading it validates the port
    except ValueError as exc:
        raise ConfigError(f"{variable}={url!r} is invalid: {exc}") from exc
    if parsed.scheme not in schemes or (parsed.scheme != "unix" and not parsed.hostname):
        names = [f"{scheme}://" for scheme in sorted(schemes)]
        allowed = ", ".join(names[:-1]) + " or " + names[-1]
        raise ConfigError(
            f"{variable}={url!r} must start with {allowed} and name a host, such as {example}"
        )


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of true, false, 1, 0, yes, no")


def _parse_enum(enum: type[DeliveryMode]) -> Callable[[str], DeliveryMode]:
    def parse(raw: str) -> DeliveryMode:
        try:
            return enum(raw.strip().lower())
        except ValueError:
            choices = ", ".join(member.value for member in enum)
            raise ValueError(f"expected one of {choices}") from None

    return parse


def _parse_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return level


def _text(raw: str) -> str:
    return raw


def _integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected a whole number, such as 8000") from None


def _number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("expected a number, such as 2.5") from None


_PARSERS: dict[str, Callable[[str], Any]] = {
    "host": _text,
    "port": _integer,
    "workers": _integer,
    "redis_url": _text,
    "data_dir": Path,
    "embedded_port": _integer,
    "shard_count": _integer,
    "dedupe_ttl_seconds": _integer,
    "max_body_bytes": _integer,
    "body_timeout_seconds": _number,
    "max_range_days": _integer,
    "redis_timeout_seconds": _number,
    "redis_max_connections": _integer,
    "webhook_secret": _text,
    "dispatcher_enabled": _parse_bool,
    "daily_total_url": _text,
    "daily_total_secret": _text,
    "delivery_mode": _parse_enum(DeliveryMode),
    "delivery_timeout_seconds": _number,
    "delivery_concurrency": _integer,
    "read_batch_size": _integer,
    "retry_base_seconds": _number,
    "retry_cap_seconds": _number,
    "max_event_age_seconds": _number,
    "claim_idle_seconds": _number,
    "shutdown_grace_seconds": _number,
    "log_level": _parse_level,
}
