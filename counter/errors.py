"""Exceptions raised by the service.

CounterError
├── ConfigError          a setting is missing or invalid
├── StoreError           a Redis command failed
│   ├── StoreUnavailable     Redis could not be reached or did not reply in time
│   └── ShardCountMismatch   the data was written with another shard count
├── InvalidInput         request fields failed validation, one FieldError each
├── IdReused             a message id came back with another created_at
├── InvalidSignature     an incoming webhook is not signed with the shared secret
└── DispatcherCrashed    the dispatcher stopped with an error
"""

from __future__ import annotations

from dataclasses import dataclass


class CounterError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(CounterError):
    """A setting is missing or has an invalid value."""


class StoreError(CounterError):
    """A Redis command failed."""


class StoreUnavailable(StoreError):
    """Redis could not be reached or did not reply in time; retrying later may succeed."""


class ShardCountMismatch(StoreError):
    """The stored data was laid out with another shard count."""


@dataclass(frozen=True)
class FieldError:
    """One invalid field: where it is, and what a valid value looks like."""

    field: str
    detail: str


class InvalidInput(CounterError):
    """One or more request fields are invalid."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{error.field}: {error.detail}" for error in errors))
        self.errors = errors


class IdReused(CounterError):
    """A message id that was already counted came back with a different created_at."""


class InvalidSignature(CounterError):
    """An incoming webhook's Standard Webhooks signature is missing, stale or wrong."""


class DispatcherCrashed(CounterError):
    """The dispatcher stopped with an error, so `counter dispatch` must exit non-zero."""
