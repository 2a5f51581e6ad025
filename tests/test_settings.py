"""Reading and validating COUNTER_* variables in counter.settings.

Every test passes a dict as the environment, so the real one never leaks in.
"""

from __future__ import annotations

import base64
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from counter.errors import ConfigError
from counter.settings import DeliveryMode, Settings

# Settings that validated() requires to be greater than zero.
POSITIVE = [
    "shard_count",
    "dedupe_ttl_seconds",
    "max_body_bytes",
    "max_range_days",
    "redis_timeout_seconds",
    "delivery_timeout_seconds",
    "delivery_concurrency",
    "read_batch_size",
    "retry_base_seconds",
    "retry_cap_seconds",
    "max_event_age_seconds",
    "claim_idle_seconds",
]
INT_SETTINGS = [
    "embedded_port",
    "shard_count",
    "dedupe_ttl_seconds",
    "max_body_bytes",
    "max_range_days",
    "delivery_concurrency",
    "read_batch_size",
]
FLOAT_SETTINGS = [
    "redis_timeout_seconds",
    "delivery_timeout_seconds",
    "retry_base_seconds",
    "retry_cap_seconds",
    "max_event_age_seconds",
    "claim_idle_seconds",
    "shutdown_grace_seconds",
]


def variable(name: str) -> str:
    return "COUNTER_" + name.upper()


def config_error(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environ)
    return str(caught.value)


def test_settings_defaults() -> None:
    settings = Settings.from_env({})

    assert settings.redis_url is None
    assert settings.data_dir == Path(".data")
    assert settings.embedded_port == 6399
    assert settings.shard_count == 16
    assert settings.dedupe_ttl_seconds == 7 * 24 * 3600
    assert settings.max_body_bytes == 64 * 1024
    assert settings.max_range_days == 366
    assert settings.redis_timeout_seconds == 5.0
    assert settings.webhook_secret is None
    assert settings.dispatcher_enabled is True
    assert settings.daily_total_url == "http://127.0.0.1:8081/daily-totals"
    assert settings.daily_total_secret is None
    assert settings.delivery_mode is DeliveryMode.EVERY
    assert settings.delivery_timeout_seconds == 10.0
    assert settings.delivery_concurrency == 64
    assert settings.read_batch_size == 256
    assert settings.retry_base_seconds == 0.5
    assert settings.retry_cap_seconds == 300.0
    assert settings.max_event_age_seconds == 3 * 24 * 3600
    assert settings.claim_idle_seconds == 30.0
    assert settings.shutdown_grace_seconds == 10.0
    assert settings.log_level == "INFO"


def test_settings_defaults_equal_constructor() -> None:
    assert Settings.from_env({}) == Settings()


def test_settings_ignore_other_variables() -> None:
    environ = {"SHARD_COUNT": "3", "counter_shard_count": "3", "COUNTER_UNKNOWN": "x"}

    assert Settings.from_env(environ) == Settings()


PARSE_CASES: list[tuple[str, str, Any]] = [
    ("redis_url", "redis://127.0.0.1:6380/1", "redis://127.0.0.1:6380/1"),
    ("data_dir", "/tmp/counter-data", Path("/tmp/counter-data")),
    ("embedded_port", "6400", 6400),
    ("embedded_port", "0", 0),
    ("shard_count", "64", 64),
    ("shard_count", " 8 ", 8),
    ("dedupe_ttl_seconds", "3600", 3600),
    ("max_body_bytes", "1024", 1024),
    ("max_range_days", "31", 31),
    ("redis_timeout_seconds", "0.25", 0.25),
    ("webhook_secret", "whsec_" + "A" * 32, "whsec_" + "A" * 32),
    ("daily_total_url", "http://127.0.0.1:9000/x", "http://127.0.0.1:9000/x"),
    ("daily_total_secret", "B" * 64, "B" * 64),
    ("delivery_timeout_seconds", "2", 2.0),
    ("delivery_concurrency", "8", 8),
    ("read_batch_size", "10", 10),
    ("retry_base_seconds", "0.1", 0.1),
    ("retry_cap_seconds", "60", 60.0),
    ("max_event_age_seconds", "86400", 86400.0),
    ("claim_idle_seconds", "5.5", 5.5),
    ("shutdown_grace_seconds", "1.5", 1.5),
    ("shutdown_grace_seconds", "0", 0.0),
]


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    PARSE_CASES,
    ids=[f"{name}={raw!r}" for name, raw, _ in PARSE_CASES],
)
def test_settings_parse_each_variable(name: str, raw: str, expected: Any) -> None:
    settings = Settings.from_env({variable(name): raw})

    assert getattr(settings, name) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
    ids=lambda value: repr(value) if isinstance(value, str) else None,
)
def test_settings_parse_bool(raw: str, expected: bool) -> None:
    settings = Settings.from_env({"COUNTER_DISPATCHER_ENABLED": raw})

    assert settings.dispatcher_enabled is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("every", DeliveryMode.EVERY),
        ("latest", DeliveryMode.LATEST),
        ("LATEST", DeliveryMode.LATEST),
        (" latest ", DeliveryMode.LATEST),
    ],
    ids=["every", "latest", "upper-case", "padded"],
)
def test_settings_parse_delivery_mode(raw: str, expected: DeliveryMode) -> None:
    settings = Settings.from_env({"COUNTER_DELIVERY_MODE": raw})

    assert settings.delivery_mode is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("debug", "DEBUG"), ("INFO", "INFO"), (" Warning ", "WARNING"), ("error", "ERROR")],
    ids=["debug", "info", "warning-padded", "error"],
)
def test_settings_parse_log_level(raw: str, expected: str) -> None:
    settings = Settings.from_env({"COUNTER_LOG_LEVEL": raw})

    assert settings.log_level == expected


@pytest.mark.parametrize("name", INT_SETTINGS)
@pytest.mark.parametrize(
    "raw", ["abc", "1.5", "1e3", "0x10"], ids=["word", "fraction", "exponent", "hex"]
)
def test_settings_reject_invalid_int(name: str, raw: str) -> None:
    message = config_error({variable(name): raw})

    assert message.startswith(f"{variable(name)}={raw!r} is invalid")
    assert message.endswith("expected a whole number, such as 8000")


@pytest.mark.parametrize("name", FLOAT_SETTINGS)
@pytest.mark.parametrize("raw", ["abc", "1,5", "5s"], ids=["word", "comma", "unit-suffix"])
def test_settings_reject_invalid_float(name: str, raw: str) -> None:
    message = config_error({variable(name): raw})

    assert message.startswith(f"{variable(name)}={raw!r} is invalid")
    assert message.endswith("expected a number, such as 2.5")


@pytest.mark.parametrize("name", FLOAT_SETTINGS)
def test_settings_reject_nan(name: str) -> None:
    # NaN compares false with everything, so it would slip past every range check.
    message = config_error({variable(name): "nan"})

    assert variable(name) in message


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled"], ids=["word", "two", "enabled"])
def test_settings_reject_invalid_bool(raw: str) -> None:
    message = config_error({"COUNTER_DISPATCHER_ENABLED": raw})

    assert message.startswith(f"COUNTER_DISPATCHER_ENABLED={raw!r} is invalid")
    assert "expected one of true, false, 1, 0, yes, no" in message


@pytest.mark.parametrize("raw", ["all", "first", "every,latest"], ids=["all", "first", "list"])
def test_settings_reject_invalid_delivery_mode(raw: str) -> None:
    message = config_error({"COUNTER_DELIVERY_MODE": raw})

    assert message.startswith(f"COUNTER_DELIVERY_MODE={raw!r} is invalid")
    assert "expected one of every, latest" in message


@pytest.mark.parametrize("raw", ["verbose", "CRITICAL", "10"], ids=["word", "critical", "number"])
def test_settings_reject_invalid_log_level(raw: str) -> None:
    message = config_error({"COUNTER_LOG_LEVEL": raw})

    assert message.startswith(f"COUNTER_LOG_LEVEL={raw!r} is invalid")
    assert "expected DEBUG, INFO, WARNING or ERROR" in message


@pytest.mark.parametrize("name", POSITIVE)
@pytest.mark.parametrize("raw", ["0", "-1"], ids=["zero", "negative"])
def test_settings_reject_non_positive(name: str, raw: str) -> None:
    message = config_error({variable(name): raw})

    assert message.startswith(f"{variable(name)} must be between")


def test_settings_reject_negative_shutdown_grace() -> None:
    # Zero means "cancel in-flight deliveries at once". A negative grace period has no meaning.
    message = config_error({"COUNTER_SHUTDOWN_GRACE_SECONDS": "-5"})

    assert "COUNTER_SHUTDOWN_GRACE_SECONDS" in message


@pytest.mark.parametrize(
    "raw", ["-1", "65536", "100000"], ids=["negative", "just-over", "far-over"]
)
def test_settings_reject_port_out_of_range(raw: str) -> None:
    message = config_error({"COUNTER_EMBEDDED_PORT": raw})

    assert message == f"COUNTER_EMBEDDED_PORT must be between 0 and 65535, not {int(raw)}"


@pytest.mark.parametrize(
    "name",
    [field.name for field in fields(Settings)],
)
def test_settings_empty_string_means_default(name: str) -> None:
    settings = Settings.from_env({variable(name): ""})

    assert getattr(settings, name) == getattr(Settings(), name)


def test_settings_error_chains_parse_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"COUNTER_SHARD_COUNT": "many"})

    assert isinstance(caught.value.__cause__, ValueError)


def test_settings_with_changes_validates() -> None:
    settings = Settings.from_env({})

    changed = settings.with_changes(shard_count=4)

    assert changed.shard_count == 4
    assert settings.shard_count == 16
    with pytest.raises(ConfigError):
        settings.with_changes(shard_count=0)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("COUNTER_DEDUPE_TTL_SECONDS", "9223372036854775"),
        ("COUNTER_MAX_RANGE_DAYS", "999999999999"),
        ("COUNTER_SHUTDOWN_GRACE_SECONDS", "inf"),
        ("COUNTER_PORT", "70000"),
        ("COUNTER_PORT", "0"),
        ("COUNTER_WORKERS", "0"),
        ("COUNTER_SHARD_COUNT", "100000"),
    ],
    ids=[
        "ttl-huge",
        "range-huge",
        "grace-infinite",
        "port-over",
        "port-zero",
        "no-workers",
        "shards",
    ],
)
def test_settings_reject_out_of_range(name: str, raw: str) -> None:
    message = config_error({name: raw})

    assert message.startswith(f"{name} must be between")


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("COUNTER_REDIS_URL", "foo://bar"),
        ("COUNTER_REDIS_URL", "localhost:6379"),
        ("COUNTER_DAILY_TOTAL_URL", "not-a-url"),
        ("COUNTER_DAILY_TOTAL_URL", "ftp://receiver.example/x"),
        ("COUNTER_DAILY_TOTAL_URL", "http://"),
    ],
    ids=["redis-scheme", "redis-no-scheme", "total-words", "total-ftp", "total-no-host"],
)
def test_settings_reject_bad_url(name: str, raw: str) -> None:
    message = config_error({name: raw})

    assert message.startswith(f"{name}={raw!r} must start with")


def test_settings_url_error_lists_schemes() -> None:
    message = config_error({"COUNTER_DAILY_TOTAL_URL": "ftp://receiver.example/x"})

    assert "must start with http:// or https:// and name a host" in message


@pytest.mark.parametrize(
    "raw", ["redis://127.0.0.1:6379/0", "rediss://h:1/0", "unix:///tmp/r.sock"]
)
def test_settings_accept_redis_urls(raw: str) -> None:
    assert Settings.from_env({"COUNTER_REDIS_URL": raw}).redis_url == raw


@pytest.mark.parametrize("name", ["COUNTER_WEBHOOK_SECRET", "COUNTER_DAILY_TOTAL_SECRET"])
def test_settings_reject_bad_secret(name: str) -> None:
    message = config_error({name: "whsec_!!!"})

    assert message.startswith(f"{name} must be base64")


@pytest.mark.parametrize("name", ["COUNTER_WEBHOOK_SECRET", "COUNTER_DAILY_TOTAL_SECRET"])
@pytest.mark.parametrize(
    ("key_bytes", "accepted"),
    [(2, False), (23, False), (24, True), (64, True), (65, False)],
    ids=["2-bytes", "23-bytes", "24-bytes", "64-bytes", "65-bytes"],
)
def test_settings_secret_key_length(name: str, key_bytes: int, accepted: bool) -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(key_bytes))).decode()

    if accepted:
        Settings.from_env({name: secret})
    else:
        message = config_error({name: secret})
        assert message.startswith(f"{name} must encode 24 to 64 random bytes, not {key_bytes}")
