"""Fault settings for the mock external service, and the fault decision for one event POST."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from http import HTTPStatus
from typing import Any, TypeGuard

# A random failure (failure_rate) always uses this status and never sends Retry-After.
RANDOM_FAILURE_STATUS = 500

# The statuses that get a Retry-After header when retry_after_s is set.
RETRY_AFTER_STATUSES = frozenset({429, 503})

# Upper bounds that catch typos: a delay over 5 minutes or a Retry-After over a day is
# almost certainly one.
MAX_LATENCY_MS = 300_000
MAX_RETRY_AFTER_S = 86_400

# Only statuses that http.HTTPStatus defines, so that every problem+json body gets a title.
_ERROR_STATUSES = frozenset(status.value for status in HTTPStatus if 400 <= status.value <= 599)


class InvalidFaultsError(ValueError):
    """A fault setting that is unknown, of the wrong type or out of range.

    field is the setting's name, and reason describes the expected value and the value given.
    """

    def __init__(self, field: str, reason: str, *, unknown: bool = False) -> None:
        kind = "unknown" if unknown else "invalid"
        super().__init__(f"{kind} fault setting {field}: {reason}")
        self.field = field
        self.reason = reason


def _is_int(value: object) -> TypeGuard[int]:
    # bool is a subclass of int, but `true` is no status or duration.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_rate(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 0 <= value <= 1


def _is_error_status(value: object) -> bool:
    return value is None or (_is_int(value) and value in _ERROR_STATUSES)


def _is_retry_after(value: object) -> bool:
    return value is None or (_is_int(value) and 0 <= value <= MAX_RETRY_AFTER_S)


def _is_latency(value: object) -> bool:
    return _is_int(value) and 0 <= value <= MAX_LATENCY_MS


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


# Field name -> (check, description of the expected value for error messages).
_CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "failure_rate": (_is_rate, "a number from 0 to 1"),
    "status": (_is_error_status, "a standard HTTP error status from 400 to 599"),
    "retry_after_s": (
        _is_retry_after,
        f"a whole number of seconds from 0 to {MAX_RETRY_AFTER_S}",
    ),
    "latency_ms": (_is_latency, f"a whole number of milliseconds from 0 to {MAX_LATENCY_MS}"),
    "down": (_is_bool, "true or false"),
}


@dataclass(frozen=True)
class Faults:
    """Faults injected into event POSTs. The defaults inject none.

    failure_rate: probability from 0 to 1 that an event POST gets a 500.
    status: if set, every event POST gets this status, and failure_rate is ignored.
    retry_after_s: the Retry-After value in seconds, sent only with a status of 429 or 503.
    latency_ms: delay in ms before each event POST is handled.
    down: if true, every event POST has its connection closed without a response, at once.
    """

    failure_rate: float = 0.0
    status: int | None = None
    retry_after_s: int | None = None
    latency_ms: int = 0
    down: bool = False

    def __post_init__(self) -> None:
        for name, (check, expected) in _CHECKS.items():
            value = getattr(self, name)
            if not check(value):
                raise InvalidFaultsError(name, f"expected {expected}, got {value!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Faults:
        """Build faults from a JSON-like mapping. Missing fields take their defaults.

        Raises InvalidFaultsError, a ValueError, for an unknown field or an invalid value.
        """
        known = {field.name for field in fields(cls)}
        for name in values:
            if name not in known:
                reason = f"expected one of {', '.join(sorted(known))}"
                raise InvalidFaultsError(name, reason, unknown=True)

        settings = dict(values)
        rate = settings.get("failure_rate")
        if _is_int(rate):
            settings["failure_rate"] = float(rate)
        return cls(**settings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FaultOutcome:
    """The faults to apply to one event POST, listed in the order the app applies them.

    close_connection: close the TCP connection without a response. Nothing else applies.
    delay_ms: wait this long before checking the signature.
    status: after a valid signature, respond with this error status instead of recording.
    retry_after_s: the Retry-After header value to send with status, if any.
    """

    close_connection: bool = False
    delay_ms: int = 0
    status: int | None = None
    retry_after_s: int | None = None


def decide_fault(faults: Faults, rng: random.Random) -> FaultOutcome:
    """Decide the faults for one event POST, drawing from rng only when failure_rate is used."""
    if faults.down:
        return FaultOutcome(close_connection=True)

    if faults.status is not None:
        return FaultOutcome(
            delay_ms=faults.latency_ms,
            status=faults.status,
            retry_after_s=_retry_after_for(faults.status, faults.retry_after_s),
        )

    if faults.failure_rate > 0 and rng.random() < faults.failure_rate:
        return FaultOutcome(delay_ms=faults.latency_ms, status=RANDOM_FAILURE_STATUS)

    return FaultOutcome(delay_ms=faults.latency_ms)


def _retry_after_for(status: int, retry_after_s: int | None) -> int | None:
    return retry_after_s if status in RETRY_AFTER_STATUSES else None
