"""Counting over HTTP against the real service, Valkey and mock receiver."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.client import post_all, request, wait_until
from tests.support.workload import build_workload, highest_totals, hourly_counts, received_events

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "counter" / "schemas" / "daily-total-event.v1.json"
DELIVERY_TIMEOUT_S = 60.0


@cache
def event_validator() -> jsonschema.Draft202012Validator:
    """Validate against the published schema, rejecting fields it does not name."""
    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator({**schema, "additionalProperties": False})


def readme_json_block(marker: str) -> Any:
    """Return the first ```json block after `<!-- marker -->` in README.md."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```json\n(.*?)```", text, re.DOTALL)
    if match is None:
        raise LookupError(f"README.md has no json block after <!-- {marker} -->")
    return json.loads(match.group(1))


def counts_between(service_url: str, account_id: str, start: str, end: str) -> list[Any]:
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
    counts = counts_between(
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


def test_concurrent_copies_count_once(service_url: str, account: str) -> None:
    message = {"message_id": "m-1", "account_id": account, "created_at": "2025-09-18T10:15:00Z"}
    copies = [message] * 300

    statuses = asyncio.run(
        post_all(
            f"{service_url}/webhooks/messages", copies, concurrency=300, retry_statuses=frozenset()
        )
    )

    assert Counter(statuses) == {202: 1, 200: 299}


def test_reused_message_id_is_rejected(service_url: str, account: str) -> None:
    url = f"{service_url}/webhooks/messages"
    original = {"message_id": "m-1", "account_id": account, "created_at": "2025-09-18T10:15:00Z"}
    request("POST", url, json=original)

    reused = request("POST", url, json={**original, "created_at": "2025-09-18T10:15:01Z"})

    assert reused.status == 422
    assert reused.json()["type"] == "urn:message-counter:problem:message-id-reused"
    counts = counts_between(service_url, account, "2025-09-18T00:00:00Z", "2025-09-19T00:00:00Z")
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
    assert first.json()["day_total"] == 1
    assert other_account.json()["day_total"] == 1
    for account_id in (account, account + "-other"):
        counts = counts_between(
            service_url, account_id, "2025-09-18T00:00:00Z", "2025-09-19T00:00:00Z"
        )
        assert [item["count_messages"] for item in counts] == [1]


def test_late_message_counts_in_its_own_hour(service_url: str, account: str) -> None:
    url = f"{service_url}/webhooks/messages"
    for index, created_at in enumerate(["2025-09-18T10:15:00Z", "2025-09-16T23:59:59.999+00:00"]):
        request(
            "POST",
            url,
            json={"message_id": f"m-{index}", "account_id": account, "created_at": created_at},
        )

    counts = counts_between(service_url, account, "2025-09-16T00:00:00Z", "2025-09-19T00:00:00Z")

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

    counts = counts_between(service_url, account, "2025-09-18T09:30:00Z", "2025-09-18T11:00:00Z")
    shifted = counts_between(
        service_url, account, "2025-09-18T14:30:00%2B05:00", "2025-09-18T16:00:01%2B05:00"
    )

    assert [item["datetime"] for item in counts] == ["2025-09-18T09:00:00Z", "2025-09-18T10:00:00Z"]
    assert [item["count_messages"] for item in counts] == [2, 2]
    assert [item["datetime"] for item in shifted] == [
        "2025-09-18T09:00:00Z",
        "2025-09-18T10:00:00Z",
        "2025-09-18T11:00:00Z",
    ]


def test_counts_empty_window_is_empty(service_url: str, account: str) -> None:
    message = {"message_id": "m-1", "account_id": account, "created_at": "2025-09-18T10:15:00Z"}
    posted = request("POST", f"{service_url}/webhooks/messages", json=message)

    counts = counts_between(service_url, account, "2025-09-18T10:30:00Z", "2025-09-18T10:30:00Z")
    control = counts_between(service_url, account, "2025-09-18T10:30:00Z", "2025-09-18T10:30:01Z")

    assert posted.status == 202
    assert counts == []
    assert [item["count_messages"] for item in control] == [1]


def test_unknown_account_has_no_counts(service_url: str, account: str) -> None:
    counts = counts_between(service_url, account, "2025-09-18T00:00:00Z", "2025-09-19T00:00:00Z")

    assert counts == []


@pytest.mark.slow
def test_thousand_messages_match_reference(service_url: str, mock_url: str, account: str) -> None:
    accounts = [f"{account}:{index}" for index in range(10)]
    workload = build_workload(accounts, 800, 200, days=3, rng=random.Random(20250918))

    url = f"{service_url}/webhooks/messages"
    statuses = asyncio.run(post_all(url, workload.messages, concurrency=16))

    assert Counter(statuses) == {202: 800, 200: 200}
    for account_id in accounts:
        assert hourly_counts(service_url, account_id, days=3) == workload.hourly[account_id]

    def all_delivered() -> bool:
        return sum(len(received_events(mock_url, a)) for a in accounts) >= 800

    wait_until(all_delivered, DELIVERY_TIMEOUT_S)
    events = [event for a in accounts for event in received_events(mock_url, a)]
    assert len(events) == 800
    assert len({event["event_id"] for event in events}) == 800
    for event in events:
        event_validator().validate(event)
    assert highest_totals(events) == workload.daily
    totals_seen: dict[tuple[str, str], set[int]] = defaultdict(set)
    for event in events:
        totals_seen[(event["account_id"], event["date"])].add(event["total"])
    assert totals_seen == {key: set(range(1, total + 1)) for key, total in workload.daily.items()}
