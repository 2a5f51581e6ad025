"""Coalescing of outbox events for the `latest` delivery mode in counter.coalesce."""

from __future__ import annotations

from counter.coalesce import DayKey, merge_latest
from counter.contract import OutboxRecord
from counter.outbox import OutboxEvent


def event(entry_id: str, account_id: str, day: str, total: int) -> OutboxEvent:
    record = OutboxRecord(
        account_id=account_id,
        date=day,
        total=total,
        message_id=f"m-{total}",
        computed_at_ms=1_758_190_500_000 + total,
    )
    return OutboxEvent(shard=0, entry_id=entry_id, record=record)


def entry_ids(events: list[OutboxEvent]) -> list[str]:
    return [item.entry_id for item in events]


def keep_latest(events: list[OutboxEvent]) -> tuple[list[OutboxEvent], list[OutboxEvent]]:
    """Split one batch with merge_latest into the highest total per day and the rest."""
    latest: dict[DayKey, OutboxEvent] = {}
    superseded = merge_latest(latest, events)
    return list(latest.values()), superseded


def test_keep_latest_empty() -> None:
    latest, superseded = keep_latest([])

    assert latest == []
    assert superseded == []


def test_keep_latest_single_event() -> None:
    only = event("1-0", "acc-1", "2025-09-18", 1)

    latest, superseded = keep_latest([only])

    assert latest == [only]
    assert superseded == []


def test_keep_latest_keeps_highest_total() -> None:
    events = [
        event("1-0", "acc-1", "2025-09-18", 1),
        event("2-0", "acc-1", "2025-09-18", 2),
        event("3-0", "acc-1", "2025-09-18", 3),
    ]

    latest, superseded = keep_latest(events)

    assert entry_ids(latest) == ["3-0"]
    assert entry_ids(superseded) == ["1-0", "2-0"]


def test_keep_latest_ignores_arrival_order() -> None:
    # The batch order is not trusted: the highest total wins wherever it sits.
    events = [
        event("1-0", "acc-1", "2025-09-18", 5),
        event("2-0", "acc-1", "2025-09-18", 7),
        event("3-0", "acc-1", "2025-09-18", 6),
    ]

    latest, superseded = keep_latest(events)

    assert entry_ids(latest) == ["2-0"]
    assert entry_ids(superseded) == ["1-0", "3-0"]


def test_keep_latest_preserves_distinct_keys() -> None:
    events = [
        event("1-0", "acc-1", "2025-09-18", 4),
        event("2-0", "acc-2", "2025-09-18", 4),
        event("3-0", "acc-1", "2025-09-19", 1),
    ]

    latest, superseded = keep_latest(events)

    assert entry_ids(latest) == ["1-0", "2-0", "3-0"]
    assert superseded == []


def test_keep_latest_groups_by_account_and_date() -> None:
    events = [
        event("1-0", "acc-1", "2025-09-18", 1),
        event("2-0", "acc-2", "2025-09-18", 1),
        event("3-0", "acc-1", "2025-09-19", 1),
        event("4-0", "acc-1", "2025-09-18", 2),
        event("5-0", "acc-2", "2025-09-18", 2),
        event("6-0", "acc-1", "2025-09-19", 2),
    ]

    latest, superseded = keep_latest(events)

    assert sorted(entry_ids(latest)) == ["4-0", "5-0", "6-0"]
    assert entry_ids(superseded) == ["1-0", "2-0", "3-0"]


def test_keep_latest_splits_every_event_once() -> None:
    events = [event(f"{n}-0", f"acc-{n % 3}", "2025-09-18", n) for n in range(1, 31)]

    latest, superseded = keep_latest(events)

    assert len(latest) + len(superseded) == len(events)
    assert sorted(entry_ids(latest + superseded)) == sorted(entry_ids(events))
    assert {item.record.total for item in latest} == {28, 29, 30}


def test_keep_latest_equal_totals_keeps_one() -> None:
    # Equal totals give the same event_id, so sending one of them is enough.
    first = event("1-0", "acc-1", "2025-09-18", 3)
    repeat = event("2-0", "acc-1", "2025-09-18", 3)

    latest, superseded = keep_latest([first, repeat])

    assert entry_ids(latest) == ["1-0"]
    assert entry_ids(superseded) == ["2-0"]


def test_keep_latest_tells_equal_events_apart() -> None:
    # Equal dataclasses are still two stream entries, and each must land in exactly one list.
    first = event("1-0", "acc-1", "2025-09-18", 3)
    twin = event("1-0", "acc-1", "2025-09-18", 3)

    latest, superseded = keep_latest([first, twin])

    assert len(latest) == 1
    assert latest[0] is first
    assert len(superseded) == 1
    assert superseded[0] is twin


def test_merge_latest_replaces_waiting_event() -> None:
    waiting_event = event("1-0", "acc-1", "2025-09-18", 2)
    waiting = {("acc-1", "2025-09-18"): waiting_event}
    newer = event("2-0", "acc-1", "2025-09-18", 3)

    superseded = merge_latest(waiting, [newer])

    assert superseded == [waiting_event]
    assert waiting == {("acc-1", "2025-09-18"): newer}


def test_merge_latest_keeps_waiting_event_when_newer() -> None:
    waiting_event = event("5-0", "acc-1", "2025-09-18", 9)
    waiting = {("acc-1", "2025-09-18"): waiting_event}
    older = event("3-0", "acc-1", "2025-09-18", 8)

    superseded = merge_latest(waiting, [older])

    assert superseded == [older]
    assert waiting == {("acc-1", "2025-09-18"): waiting_event}


def test_merge_latest_adds_new_keys() -> None:
    waiting_event = event("1-0", "acc-1", "2025-09-18", 2)
    waiting = {("acc-1", "2025-09-18"): waiting_event}
    other_day = event("2-0", "acc-1", "2025-09-19", 1)

    superseded = merge_latest(waiting, [other_day])

    assert superseded == []
    assert waiting == {("acc-1", "2025-09-18"): waiting_event, ("acc-1", "2025-09-19"): other_day}
