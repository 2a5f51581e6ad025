"""Coalescing for the `latest` delivery mode. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from counter.contract import OutboxRecord


class HasRecord(Protocol):
    @property
    def record(self) -> OutboxRecord: ...


E = TypeVar("E", bound=HasRecord)


def keep_latest(events: Sequence[E]) -> tuple[list[E], list[E]]:
    """Split a batch into the newest event of each (account_id, date) and the superseded rest.

    The newest is the one with the highest total, because a day's total only grows.
    """
    newest: dict[tuple[str, str], E] = {}
    for event in events:
        key = (event.record.account_id, event.record.date)
        current = newest.get(key)
        if current is None or event.record.total > current.record.total:
            newest[key] = event
    kept_ids = {id(event) for event in newest.values()}
    superseded = [event for event in events if id(event) not in kept_ids]
    return list(newest.values()), superseded
