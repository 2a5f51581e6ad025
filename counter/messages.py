"""Validation of incoming message webhooks. Pure: no I/O."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from counter.buckets import parse_timestamp
from counter.errors import FieldError, InvalidInput

MAX_ID_LENGTH = 256
TIMESTAMP_EXAMPLE = "2025-09-18T10:15:00Z"
TIMESTAMP_EXPECTED = f"must be an RFC 3339 timestamp with a UTC offset, such as {TIMESTAMP_EXAMPLE}"


@dataclass(frozen=True)
class Message:
    """A validated message webhook. `created_at` is in UTC."""

    message_id: str
    account_id: str
    created_at: datetime


def parse_message(payload: Any) -> Message:
    """Validate a decoded JSON body and return the message it describes.

    Raises InvalidInput listing every invalid field at once, so a sender can fix them
    in one round trip. Unknown fields are ignored.
    """
    if not isinstance(payload, dict):
        raise InvalidInput([FieldError("body", "must be a JSON object")])

    errors: list[FieldError] = []
    message_id = _check_id(payload, "message_id", errors)
    account_id = _check_id(payload, "account_id", errors)
    created_at = _check_created_at(payload, errors)
    _check_metadata(payload, errors)
    if errors or message_id is None or account_id is None or created_at is None:
        raise InvalidInput(errors)
    return Message(message_id=message_id, account_id=account_id, created_at=created_at)


def check_id_text(value: Any) -> str | None:
    """Return what is wrong with an id value, or None when it is valid."""
    if not isinstance(value, str):
        return f"must be a string, not {_json_type(value)}"
    if not value.strip():
        return "must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters, not {len(value)}"
    if any(unicodedata.category(char) == "Cc" for char in value):
        return "must not contain control characters"
    return None


def _check_id(payload: dict[str, Any], field: str, errors: list[FieldError]) -> str | None:
    if field not in payload:
        errors.append(FieldError(field, "is required"))
        return None
    problem = check_id_text(payload[field])
    if problem is not None:
        errors.append(FieldError(field, problem))
        return None
    value: str = payload[field]
    return value


def _check_created_at(payload: dict[str, Any], errors: list[FieldError]) -> datetime | None:
    expected = TIMESTAMP_EXPECTED
    if "created_at" not in payload:
        errors.append(FieldError("created_at", f"is required and {expected}"))
        return None
    value = payload["created_at"]
    if not isinstance(value, str):
        errors.append(FieldError("created_at", f"{expected}, not {_json_type(value)}"))
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        errors.append(FieldError("created_at", f"{expected}; got {value[:64]!r}, {exc}"))
        return None


def _check_metadata(payload: dict[str, Any], errors: list[FieldError]) -> None:
    metadata = payload.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        errors.append(FieldError("metadata", f"must be a JSON object, not {_json_type(metadata)}"))


def _json_type(value: Any) -> str:
    """Name a decoded value by its JSON type, as a sender would see it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
