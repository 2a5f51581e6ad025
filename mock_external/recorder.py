"""In-memory log of the events the mock received, deduplicated by event_id."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class InvalidEventError(ValueError):
    """An event POST body that is not a JSON object with a non-empty string event_id."""


@dataclass(frozen=True)
class EventStats:
    """Counters since start or the last clear().

    received: event POSTs that reached recording, equal to distinct + duplicates.
    distinct: events with an event_id not seen before.
    duplicates: later copies of an event_id already recorded.
    rejected: event POSTs that got an injected fault (a closed connection included) or a 401.
    """

    received: int
    distinct: int
    duplicates: int
    rejected: int


class EventLog:
    """Events keyed by event_id, in the order they were first received.

    NOTE: the log grows without limit until clear(), so a long load run should clear it.
    """

    def __init__(self) -> None:
        self._events: dict[str, dict[str, Any]] = {}
        self._duplicates = 0
        self._rejected = 0

    def record(self, event: Mapping[str, Any]) -> bool:
        """Store the event unless its event_id is already stored, and return whether it was new.

        The first copy of an event_id wins, and later copies only count as duplicates.
        Raises InvalidEventError, a ValueError, if event_id is not a non-empty string.
        """
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            raise InvalidEventError(
                f"invalid event_id: expected a non-empty string, got {event_id!r}"
            )

        if event_id in self._events:
            self._duplicates += 1
            return False

        self._events[event_id] = dict(event)
        return True

    def count_rejected(self) -> None:
        self._rejected += 1

    def events(
        self, account_id: str | None = None, date: str | None = None
    ) -> list[dict[str, Any]]:
        """Return the stored events, oldest first, that match every filter given."""
        return [
            event
            for event in self._events.values()
            if (account_id is None or event.get("account_id") == account_id)
            and (date is None or event.get("date") == date)
        ]

    def stats(self) -> EventStats:
        distinct = len(self._events)
        return EventStats(
            received=distinct + self._duplicates,
            distinct=distinct,
            duplicates=self._duplicates,
            rejected=self._rejected,
        )

    def clear(self) -> None:
        """Remove every event and reset the counters to zero."""
        self._events.clear()
        self._duplicates = 0
        self._rejected = 0
