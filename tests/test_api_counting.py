"""Counting over HTTP against the real service, Valkey and mock receiver."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.client import post_all, request, wait_until

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "counter" / "schemas" / "daily-total-event.v1.json"
DELIVERY_TIMEOUT_S = 60.0


@cache
def event_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def readme_json_block(marker: str) -> Any:
    """Return the first ```json block after `<!-- marker -->` in README.md."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```json\n(.*?)```", text, re.DOTALL)
    if match is None:
        raise LookupError(f"README.md has no json block after <!-- {marker} -->")
    return json.loads(match.group(1))


def received_events(mock_url: str, account_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = request(
        "GET", f"{mock_url}/daily-totals?account_id={account_id}"
    ).json()
    return events


def hourly_counts(service_url: str, account_id: str, start: str, end: str) -> list[Any]:
    reply = request("GET", f"{service_url}/counts?account_id={account_id}&from={start}&to={end}")
    assert reply.status == 200, reply.body
    counts: list[Any] = reply.json()
    return counts


def test_readme_example_end_to_end(service_url: str, mock_url: str) -> None:
    message = readme_json_block("example-message")
    expected_reply = readme_json_block("example-reply")

    first = request("POST", f"{service_url}/webhooks/messages", json=message)
    again = request("POST", f"{service_url}/webhooks/messages", json=message)

    assert first.status == 202
    assert first.json() == expected_reply
    assert again.status == 200
    assert again.json() == {**expected_reply, "status": "duplicate"}
    counts = hourly_counts(
        service_url, message["account_id"], "2025-09-18T00:00:00Z", "2025-09-19T00:00:00Z"
    )
    assert counts == readme_json_block("example-counts")

    wait_until(lambda: len(received_events(mock_url, message["account_id"])) == 1, 30)
    [event] = received_events(mock_url, message["account_id"])
    event_validator().validate(event)
    assert event["total"] == 1
    assert event["message_id"] == message["message_id"]
    assert event["date"] == "2025-09-18"


def test_same_instant_other_notation_is_duplicate(service_url: str, account: str) -> None:
    notations = [
        "2025-09-18T10:15:00Z",
        "2025-09-18T10:15:00+00:00",
        "2025-09-18T10:15:00.000Z",
        "2025-09-18T15:45:00+05:30",
        "2025-09-18T07:15:00.000000-03:00",
    ]
    replies = [
        request(
            "POST",
            f"{service_url}/webhooks/messages",
            json={"message_id": "m-1", "account_id": account, "created_at": created_at},
        )
        for created_at in notations
    ]

    assert [reply.status for reply in replies] == [202, 200, 200, 200, 200]
    assert [reply.json()["day_total"] for reply in replies] == [1, 1, 1, 1, 1]


def test_reused_message_id_is_rejected(service_url: str, account: str) -> None:
    url = f"{service_url}/webhooks/messages"
    original = {"message_id": "m-1", "account_id": account, "created_at": "2025-09-18T10:15:00Z"}
    request("POST", url, json=original)

    reused = request("POST", url, json={**original, "created_at": "2025-09-18T10:15:01Z"})

    assert reused.status == 422
    assert reused.json()["type"] == "urn:message-counter:problem:message-id-reused"
    counts = hourly_counts(service_url, account, "2025-09-18T00:00:00Z", "2025-09-19T00:00:00Z")
    assert counts == [
        {"account_id": account, "datetime": "2025-09-18T10:00:00Z", "count_messages": 1}
    ]


def test_same_message_id_counts_per_account(service_url: str, account: str) -> None:
    url = f"{service_url}/webhooks/messages"
    message = {"message_id": "shared", "account_id": account, "created_at": "2025-09-18T10:15:00Z"}

    first = request("POST", url, json=message)
    other_account = request("POST", url, json={**message, "account_id": account + "-other"})

    assert first.status == 202
    assert other_account.status == 202


def test_late_message_counts_in_its_own_hour(service_url: str, account: str) -> None:
    url = f"{service_url}/webhooks/messages"
    for index, created_at in enumerate(["2025-09-18T10:15:00Z", "2025-09-16T23:59:59.999+00:00"]):
        request(
            "POST",
            url,
            json={"message_id": f"m-{index}", "account_id": account, "created_at": created_at},
        )

    counts = hourly_counts(service_url, account, "2025-09-16T00:00:00Z", "2025-09-19T00:00:00Z")

    assert counts == [
        {"account_id": account, "datetime": "2025-09-16T23:00:00Z", "count_messages": 1},
        {"account_id": account, "datetime": "2025-09-18T10:00:00Z", "count_messages": 1},
    ]


def test_counts_window_overlaps_partial_hours(service_url: str, account: str) -> None:
    url = f"{service_url}/webhooks/messages"
    for index, minute in enumerate([5, 50]):
        for hour in (9, 10, 11):
            created_at = f"2025-09-18T{hour:02d}:{minute:02d}:00Z"
            message_id = f"m-{hour}-{index}"
            request(
                "POST",
                url,
                json={"message_id": message_id, "account_id": account, "created_at": created_at},
            )

    counts = hourly_counts(service_url, account, "2025-09-18T09:30:00Z", "2025-09-18T11:00:00Z")
    shifted = hourly_counts(
        service_url, account, "2025-09-18T14:30:00%2B05:00", "2025-09-18T16:00:01%2B05:00"
    )

    assert [item["datetime"] for item in counts] == ["2025-09-18T09:00:00Z", "2025-09-18T10:00:00Z"]
    assert [item["count_messages"] for item in counts] == [2, 2]
    assert [item["datetime"] for item in shifted] == [
        "2025-09-18T09:00:00Z",
        "2025-09-18T10:00:00Z",
        "2025-09-18T11:00:00Z",
    ]


def test_unknown_account_has_no_counts(service_url: str, account: str) -> None:
    counts = hourly_counts(service_url, account, "2025-09-18T00:00:00Z", "2025-09-19T00:00:00Z")

    assert counts == []


def build_workload(accounts: list[str], rng: random.Random) -> tuple[list[dict[str, Any]], int]:
    """Build 1,000 messages over the accounts and 3 days, 20% of them resent duplicates.

    A resent duplicate writes the same instant in another offset half of the time.
    Returns the messages in shuffled order and how many are unique.
    """
    start = datetime(2025, 9, 17, tzinfo=UTC)
    unique = []
    for index in range(800):
        created = start + timedelta(
            seconds=rng.randrange(3 * 24 * 3600), microseconds=rng.randrange(10**6)
        )
        unique.append(
            {
                "message_id": f"wamid.{index}:{{x}} ü",
                "account_id": rng.choice(accounts),
                "created_at": created.isoformat().replace("+00:00", "Z"),
                "metadata": {"channel": "whatsapp"},
            }
        )
    duplicates = []
    for original in rng.sample(unique, 200):
        copy = dict(original)
        if rng.random() < 0.5:
            instant = datetime.fromisoformat(original["created_at"])
            copy["created_at"] = instant.astimezone(timezone(timedelta(hours=-3))).isoformat()
        duplicates.append(copy)
    messages = unique + duplicates
    rng.shuffle(messages)
    return messages, len(unique)


def reference_counts(
    messages: list[dict[str, Any]],
) -> tuple[dict[str, Counter[str]], dict[tuple[str, str], int]]:
    """Compute hourly counts and day totals the slow, obvious way."""
    seen: set[tuple[str, str]] = set()
    hourly: dict[str, Counter[str]] = defaultdict(Counter)
    daily: Counter[tuple[str, str]] = Counter()
    for message in messages:
        key = (message["account_id"], message["message_id"])
        if key in seen:
            continue
        seen.add(key)
        instant = datetime.fromisoformat(message["created_at"]).astimezone(UTC)
        hourly[message["account_id"]][instant.strftime("%Y-%m-%dT%H:00:00Z")] += 1
        daily[(message["account_id"], instant.date().isoformat())] += 1
    return hourly, dict(daily)


@pytest.mark.slow
def test_thousand_messages_match_reference(service_url: str, mock_url: str, account: str) -> None:
    rng = random.Random(20250918)
    accounts = [f"{account}:{index}" for index in range(10)]
    messages, unique_count = build_workload(accounts, rng)
    hourly, daily = reference_counts(messages)

    statuses = asyncio.run(post_all(f"{service_url}/webhooks/messages", messages, concurrency=16))

    assert Counter(statuses) == {202: unique_count, 200: len(messages) - unique_count}
    for account_id in accounts:
        counts = hourly_counts(
            service_url,
            account_id.replace(":", "%3A"),
            "2025-09-17T00:00:00Z",
            "2025-09-20T00:00:00Z",
        )
        assert {item["datetime"]: item["count_messages"] for item in counts} == hourly[account_id]
        assert all(item["account_id"] == account_id for item in counts)

    def all_delivered() -> bool:
        return (
            sum(len(received_events(mock_url, a.replace(":", "%3A"))) for a in accounts)
            >= unique_count
        )

    wait_until(all_delivered, DELIVERY_TIMEOUT_S)
    events = [event for a in accounts for event in received_events(mock_url, a.replace(":", "%3A"))]
    assert len(events) == unique_count
    assert len({event["event_id"] for event in events}) == unique_count
    for event in events:
        event_validator().validate(event)
    highest: dict[tuple[str, str], int] = defaultdict(int)
    totals_seen: dict[tuple[str, str], set[int]] = defaultdict(set)
    for event in events:
        key = (event["account_id"], event["date"])
        highest[key] = max(highest[key], event["total"])
        totals_seen[key].add(event["total"])
    assert dict(highest) == daily
    assert {key: totals_seen[key] for key in daily} == {
        key: set(range(1, total + 1)) for key, total in daily.items()
    }
