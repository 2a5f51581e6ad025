"""Restarts in the middle of a run: nothing accepted is lost, nothing is counted twice."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from counter.embedded import EmbeddedValkey
from tests.support.client import request, wait_until
from tests.support.processes import ManagedProcess
from tests.support.stack import mock_process, service_process, url_of
from tests.support.workload import (
    BackgroundSender,
    build_workload,
    highest_totals,
    hourly_counts,
    received_events,
)

SEND_TIMEOUT_S = 180.0
DELIVERY_TIMEOUT_S = 90.0


@pytest.fixture
def mock(tmp_path: Path) -> Iterator[ManagedProcess]:
    process = mock_process(tmp_path)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def service(
    tmp_path: Path, own_valkey: EmbeddedValkey, mock: ManagedProcess
) -> Iterator[ManagedProcess]:
    process = service_process(tmp_path, own_valkey.url, f"{url_of(mock)}/daily-totals")
    process.start()
    yield process
    process.stop()


@pytest.mark.slow
def test_service_and_valkey_killed_mid_run(
    own_valkey: EmbeddedValkey, mock: ManagedProcess, service: ManagedProcess
) -> None:
    accounts = [f"acc-restart-{index}" for index in range(10)]
    workload = build_workload(accounts, 2400, 600, days=3, rng=random.Random(7))
    sender = BackgroundSender(f"{url_of(service)}/webhooks/messages", workload.messages, 8)

    sender.start()
    wait_until(lambda: sender.done_fraction() > 0.3, SEND_TIMEOUT_S)
    service.kill()
    service.start()
    wait_until(lambda: sender.done_fraction() > 0.6, SEND_TIMEOUT_S)
    own_valkey.kill()
    own_valkey.start()
    statuses = sender.join(SEND_TIMEOUT_S)

    assert set(statuses) <= {200, 202}
    for account_id in accounts:
        assert hourly_counts(url_of(service), account_id, days=3) == workload.hourly[account_id]

    def all_delivered() -> bool:
        delivered = [e for a in accounts for e in received_events(url_of(mock), a)]
        return len(delivered) >= workload.unique_count

    wait_until(all_delivered, DELIVERY_TIMEOUT_S, interval_s=0.5)
    events = [event for a in accounts for event in received_events(url_of(mock), a)]
    assert len({event["event_id"] for event in events}) == workload.unique_count
    assert highest_totals(events) == workload.daily
    outbox = request("GET", f"{url_of(service)}/metrics").json()["outbox"]
    assert outbox["dead_letters"] == 0


def test_service_answers_503_while_valkey_is_down(
    own_valkey: EmbeddedValkey, service: ManagedProcess
) -> None:
    message = {"message_id": "m-1", "account_id": "acc-down", "created_at": "2025-09-18T10:15:00Z"}
    own_valkey.kill()

    down = request("POST", f"{url_of(service)}/webhooks/messages", json=message)
    not_ready = request("GET", f"{url_of(service)}/readyz")
    counts_down = request(
        "GET",
        f"{url_of(service)}/counts?account_id=acc-down&from=2025-09-18T00:00:00Z&to=2025-09-19T00:00:00Z",
    )
    own_valkey.start()
    wait_until(lambda: request("GET", f"{url_of(service)}/readyz").status == 200, 30)
    up = request("POST", f"{url_of(service)}/webhooks/messages", json=message)

    assert down.status == 503
    assert down.headers["retry-after"] == "1"
    assert down.json()["type"] == "urn:message-counter:problem:store-unavailable"
    assert not_ready.status == 503
    assert not_ready.headers["content-type"] == "application/problem+json"
    assert not_ready.json()["type"] == "urn:message-counter:problem:not-ready"
    assert counts_down.status == 503
    assert up.status == 202
