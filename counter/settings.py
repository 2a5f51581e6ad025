"""Service settings, read once from COUNTER_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from counter.errors import ConfigError
from counter.keys import DEFAULT_SHARD_COUNT

ENV_PREFIX = "COUNTER_"


class DeliveryMode(StrEnum):
    """Policy for turning outbox events into POSTs."""

    EVERY = "every"  # one POST per counted message
    LATEST = "latest"  # per batch read, only the newest total of each (account_id, date)


@dataclass(frozen=True)
class Settings:
    """Every setting of the service. Durations carry their unit in the name."""

    redis_url: str | None = None
    data_dir: Path = Path(".data")
    embedded_port: int = 6399
    shard_count: int = DEFAULT_SHARD_COUNT
    dedupe_ttl_seconds: int = 7 * 24 * 3600
    max_body_bytes: int = 64 * 1024
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
    max_event_age_seconds: float = 3 * 24 * 3600
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
        """Return self, or raise ConfigError when a value is out of range."""
        positive = {
            "shard_count": self.shard_count,
            "dedupe_ttl_seconds": self.dedupe_ttl_seconds,
            "max_body_bytes": self.max_body_bytes,
            "max_range_days": self.max_range_days,
            "redis_timeout_seconds": self.redis_timeout_seconds,
            "redis_max_connections": self.redis_max_connections,
            "delivery_timeout_seconds": self.delivery_timeout_seconds,
            "delivery_concurrency": self.delivery_concurrency,
            "read_batch_size": self.read_batch_size,
            "retry_base_seconds": self.retry_base_seconds,
            "retry_cap_seconds": self.retry_cap_seconds,
            "max_event_age_seconds": self.max_event_age_seconds,
            "claim_idle_seconds": self.claim_idle_seconds,
        }
        for name, value in positive.items():
            if not value > 0:  # written so that NaN fails too
                raise ConfigError(f"{ENV_PREFIX}{name.upper()} must be greater than 0, not {value}")
        if not self.shutdown_grace_seconds >= 0:
            raise ConfigError(
                f"{ENV_PREFIX}SHUTDOWN_GRACE_SECONDS must be 0 or more, "
                f"not {self.shutdown_grace_seconds}"
            )
        if not 0 <= self.embedded_port <= 65535:
            raise ConfigError(
                f"{ENV_PREFIX}EMBEDDED_PORT must be 0-65535, not {self.embedded_port}"
            )
        return self


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


_PARSERS: dict[str, Callable[[str], Any]] = {
    "redis_url": _text,
    "data_dir": Path,
    "embedded_port": int,
    "shard_count": int,
    "dedupe_ttl_seconds": int,
    "max_body_bytes": int,
    "max_range_days": int,
    "redis_timeout_seconds": float,
    "redis_max_connections": int,
    "webhook_secret": _text,
    "dispatcher_enabled": _parse_bool,
    "daily_total_url": _text,
    "daily_total_secret": _text,
    "delivery_mode": _parse_enum(DeliveryMode),
    "delivery_timeout_seconds": float,
    "delivery_concurrency": int,
    "read_batch_size": int,
    "retry_base_seconds": float,
    "retry_cap_seconds": float,
    "max_event_age_seconds": float,
    "claim_idle_seconds": float,
    "shutdown_grace_seconds": float,
    "log_level": _parse_level,
}
