"""Delivery under chaos: processes killed, the receiver failing and down, Valkey restarted.

20,000 webhooks (16,000 unique) are posted while a script of faults runs, keyed to how
far the sender has got. Afterwards every count must match the reference and every
daily-total event must have reached the receiver.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from counter.contract import event_id
from counter.embedded import EmbeddedValkey
from tests.support.client import request, wait_until
from tests.support.processes import ManagedProcess
from tests.support.stack import mock_process, service_process, start_valkey, url_of
from tests.support.workload import (
    BackgroundSender,
    Workload,
    build_workload,
    highest_totals,
    hourly_counts,
    received_events,
)

UNIQUE_MESSAGES = 16_000
DUPLICATE_MESSAGES = 4_000
ACCOUNTS = 20
DAYS = 3
SENDER_CONCURRENCY = 16
SEND_TIMEOUT_S = 300.0
# Each fault lasts at least this long, so that it spans several retry rounds of the
# dispatcher (its retry cap is 0.5 s in the test settings) and not just one POST.
MIN_PHASE_S = 1.5
DELIVERY_TIMEOUT_S = 180.0


@dataclass
class Stack:
    mode: str
    valkey: EmbeddedValkey
    mock: ManagedProcess
    service: ManagedProcess
    dispatcher: ManagedProcess

    def set_faults(self, **faults: object) -> None:
        reply = request("PUT", f"{url_of(self.mock)}/faults", json=faults)
        assert reply.status == 200, reply.body


@pytest.fixture(params=["every", "latest"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """Valkey, the mock, an HTTP-only service and a separate dispatcher in one delivery mode."""
    valkey = start_valkey(tmp_path / "valkey")
    mock = mock_process(tmp_path)
    daily_total_url = f"{url_of(mock)}/daily-totals"
    service = service_process(tmp_path, valkey.url, daily_total_url, args=["--no-dispatcher"])
    dispatcher = service_process(
        tmp_path,
        valkey.url,
        daily_total_url,
        env={"COUNTER_DELIVERY_MODE": request.param},
        command="dispatch",
    )
    started: list[ManagedProcess] = []
    try:
        for process in (mock, service, dispatcher):
            process.start()
            started.append(process)
        yield Stack(request.param, valkey, mock, service, dispatcher)
    finally:
        for process in reversed(started):
            process.stop()
        valkey.stop()


def restart_killed(process: ManagedProcess) -> None:
    process.kill()
    process.start()


def restart_killed_valkey(valkey: EmbeddedValkey) -> None:
    valkey.kill()
    valkey.start()


def fault_script(stack: Stack) -> list[tuple[float, Callable[[], None]]]:
    """Return (sender progress, action) pairs, run in order while the webhooks go out."""
    return [
        (0.05, lambda: stack.set_faults(status=500)),
        (0.15, lambda: restart_killed(stack.dispatcher)),
        (0.25, lambda: stack.set_faults(status=429, retry_after_s=1)),
        (0.35, lambda: restart_killed(stack.service)),
        (0.45, lambda: stack.set_faults(down=True)),
        (0.55, lambda: restart_killed(stack.dispatcher)),
        (0.65, lambda: stack.set_faults()),
        (0.70, lambda: restart_killed_valkey(stack.valkey)),
        (0.75, lambda: stack.set_faults(failure_rate=0.3)),
        (0.85, lambda: restart_killed(stack.dispatcher)),
        (0.95, lambda: stack.set_faults()),
    ]


def expected_event_ids(workload: Workload) -> set[str]:
    """Every counted message produces the event of one (account, date, total)."""
    return {
        event_id(account_id, day, total)
        for (account_id, day), day_total in workload.daily.items()
        for total in range(1, day_total + 1)
    }


@pytest.mark.slow
def test_chaos_loses_no_count_or_total(stack: Stack) -> None:
    accounts = [f"acc-chaos-{index}" for index in range(ACCOUNTS)]
    workload = build_workload(
        accounts, UNIQUE_MESSAGES, DUPLICATE_MESSAGES, DAYS, random.Random(1234)
    )
    sender = BackgroundSender(
        f"{url_of(stack.service)}/webhooks/messages", workload.messages, SENDER_CONCURRENCY
    )

    sender.start()
    for progress, action in fault_script(stack):
        phase_ends = time.monotonic() + MIN_PHASE_S
        wait_until(
            lambda p=progress, end=phase_ends: (
                sender.done_fraction() >= p and time.monotonic() >= end
            ),
            SEND_TIMEOUT_S,
        )
        action()
    statuses = sender.join(SEND_TIMEOUT_S)

    assert set(statuses) <= {200, 202}
    for account_id in accounts:
        assert hourly_counts(url_of(stack.service), account_id, DAYS) == workload.hourly[account_id]

    expected_ids = expected_event_ids(workload)

    def received() -> list[dict[str, Any]]:
        return [e for a in accounts for e in received_events(url_of(stack.mock), a)]

    if stack.mode == "every":
        # Every counted message's event reaches the receiver at least once.
        wait_until(
            lambda: {e["event_id"] for e in received()} >= expected_ids,
            DELIVERY_TIMEOUT_S,
            interval_s=1.0,
        )
        assert {event["event_id"] for event in received()} == expected_ids
    else:
        # Superseded totals may be skipped, but the final total of every day arrives.
        wait_until(lambda: highest_totals(received()) == workload.daily, DELIVERY_TIMEOUT_S, 1.0)
        assert {event["event_id"] for event in received()} <= expected_ids
    assert highest_totals(received()) == workload.daily
    outbox = request("GET", f"{url_of(stack.service)}/metrics").json()["outbox"]
    assert outbox["dead_letters"] == 0
    wait_until(
        lambda: request("GET", f"{url_of(stack.service)}/metrics").json()["outbox"]["backlog"] == 0,
        DELIVERY_TIMEOUT_S,
    )
