"""Coalescing for the `latest` delivery mode. Pure: no I/O.

A day's total only grows, so of several events for one (account_id, date) the one
with the highest total carries everything the others do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from counter.contract import OutboxRecord


class HasRecord(Protocol):
    @property
    def record(self) -> OutboxRecord: ...


E = TypeVar("E", bound=HasRecord)
DayKey = tuple[str, str]


def merge_latest(waiting: dict[DayKey, E], events: Iterable[E]) -> list[E]:
    """Fold `events` into `waiting`, which keeps the highest total per (account_id, date).

    Returns the superseded events: those whose total is lower than another one's for the
    same key, whether they were waiting already or just arrived.
    """
    superseded: list[E] = []
    for event in events:
        key = (event.record.account_id, event.record.date)
        current = waiting.get(key)
        if current is None:
            waiting[key] = event
        elif event.record.total > current.record.total:
            waiting[key] = event
            superseded.append(current)
        else:
            superseded.append(event)
    return superseded
