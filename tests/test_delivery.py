"""Delivery of daily totals to the mock receiver: retries, dead letters, modes and crashes.

Each test starts its own Valkey, mock receiver and `counter` processes, because it injects
faults or changes settings that would disturb tests sharing the session-wide ones.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from counter.embedded import EmbeddedValkey
from counter.keys import shard_of
from tests.support.client import post_all, request, wait_until
from tests.support.processes import ManagedProcess
from tests.support.stack import mock_process, service_process, start_valkey, url_of

SHARD_COUNT = 16
DAY = "2025-09-18"
WAIT_S = 20.0
# The 2 s COUNTER_SHUTDOWN_GRACE_SECONDS that tests.support.stack sets, plus the 1 s
# XREADGROUP block the dispatcher may be in when the stop arrives, plus slack for load.
MAX_STOP_S = 2.0 + 1.0 + 2.0


class Stack:
    """The Valkey, mock receiver and `counter` processes of one test."""

    def __init__(self, log_dir: Path, valkey: EmbeddedValkey, mock: ManagedProcess) -> None:
        self.log_dir = log_dir
        self.valkey = valkey
        self.mock = mock
        self.mock_url = url_of(mock)
        self.processes = [mock]

    def counter(
        self,
        command: str = "serve",
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        name: str | None = None,
    ) -> ManagedProcess:
        """Start a `counter` command against this stack's Valkey and mock. close() stops it."""
        process = service_process(
            self.log_dir,
            self.valkey.url,
            f"{self.mock_url}/daily-totals",
            env=env,
            args=args,
            command=command,
            name=name,
        )
        self.processes.append(process)
        process.start()
        return process

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.valkey.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path, start_valkey(tmp_path / "valkey"), mock_process(tmp_path))
    try:
        stack.mock.start()
        yield stack
    finally:
        stack.close()


def message(account: str, index: int) -> dict[str, str]:
    """Build message number `index` of `account`, created on DAY."""
    return {"message_id": f"m-{index}", "account_id": account, "created_at": f"{DAY}T10:15:00Z"}


def post_messages(service_url: str, account: str, count: int, first: int = 1) -> None:
    """POST `count` new messages, numbered from `first`, one after the other."""
    for index in range(first, first + count):
        reply = request("POST", f"{service_url}/webhooks/messages", json=message(account, index))
        assert reply.status == 202, reply.body


def set_faults(mock_url: str, **faults: Any) -> None:
    """Replace the mock's faults. Called without faults, it clears them all."""
    reply = request("PUT", f"{mock_url}/faults", json=faults)
    assert reply.status == 200, reply.body


def received_events(mock_url: str, account: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = request(
        "GET", f"{mock_url}/daily-totals?account_id={account}"
    ).json()
    return events


def received_totals(mock_url: str, account: str) -> list[int]:
    return sorted(event["total"] for event in received_events(mock_url, account))


def mock_stats(mock_url: str) -> dict[str, int]:
    stats: dict[str, int] = request("GET", f"{mock_url}/stats").json()
    return stats


def metrics(service_url: str) -> dict[str, Any]:
    reply = request("GET", f"{service_url}/metrics")
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.json()
    return body


def outbox_settled(service_url: str) -> bool:
    """Return whether no event waits in the outbox or in any consumer's pending list."""
    outbox = metrics(service_url)["outbox"]
    return outbox["backlog"] == 0 and outbox["pending"] == 0


def dead_letters(valkey_url: str, account: str) -> list[dict[str, str]]:
    """Read the dead-letter stream of the account's shard directly from Valkey."""
    shard = shard_of(account, SHARD_COUNT)
    with redis.Redis.from_url(valkey_url, decode_responses=True) as client:
        entries = client.xrange(f"mc:{{{shard}}}:dead")
    return [fields for _, fields in entries]


def stream_id_ms(entry_id: str) -> int:
    """Return the millisecond part of a stream entry id, which is when Redis appended it."""
    return int(entry_id.split("-", 1)[0])


def delivered_counts(output: str) -> list[int]:
    """Return the N of `delivered=N` on each "dispatcher stopped" line of a process log."""
    return [int(count) for count in re.findall(r"dispatcher stopped .* delivered=(\d+)", output)]


def test_delivery_retries_server_errors(stack: Stack, account: str) -> None:
    service_url = url_of(stack.counter())
    set_faults(stack.mock_url, status=500)
    post_messages(service_url, account, 10)
    wait_until(lambda: mock_stats(stack.mock_url)["rejected"] >= 10, WAIT_S)

    set_faults(stack.mock_url)
    wait_until(
        lambda: len(received_events(stack.mock_url, account)) == 10 and outbox_settled(service_url),
        WAIT_S,
    )

    events = received_events(stack.mock_url, account)
    stats = metrics(service_url)
    assert sorted(event["total"] for event in events) == list(range(1, 11))
    assert len({event["event_id"] for event in events}) == 10
    assert stats["dispatcher"]["retried"] > 0
    assert stats["dispatcher"]["delivered"] == 10
    assert stats["dispatcher"]["dead_lettered"] == 0
    assert stats["outbox"]["dead_letters"] == 0


def test_delivery_honours_retry_after(stack: Stack, account: str) -> None:
    service_url = url_of(stack.counter())
    set_faults(stack.mock_url, status=429, retry_after_s=1)
    post_messages(service_url, account, 1)

    wait_until(lambda: mock_stats(stack.mock_url)["rejected"] >= 1, WAIT_S)
    first_seen = time.monotonic()
    wait_until(lambda: mock_stats(stack.mock_url)["rejected"] >= 3, WAIT_S)
    third_after_s = time.monotonic() - first_seen

    set_faults(stack.mock_url)
    wait_until(lambda: received_totals(stack.mock_url, account) == [1], WAIT_S)

    # Two waits of Retry-After: 1 separate the first and the third attempt. The jittered
    # backoff alone (0.05 s base in tests) would make both retries within half a second.
    assert third_after_s >= 1.8
    assert metrics(service_url)["outbox"]["dead_letters"] == 0


def test_delivery_resumes_after_receiver_outage(stack: Stack, account: str) -> None:
    service_url = url_of(stack.counter())
    set_faults(stack.mock_url, down=True)
    post_messages(service_url, account, 5)
    wait_until(lambda: mock_stats(stack.mock_url)["rejected"] >= 5, WAIT_S)

    set_faults(stack.mock_url)
    wait_until(
        lambda: len(received_events(stack.mock_url, account)) == 5 and outbox_settled(service_url),
        WAIT_S,
    )

    stats = metrics(service_url)
    assert received_totals(stack.mock_url, account) == [1, 2, 3, 4, 5]
    assert stats["dispatcher"]["retried"] > 0
    assert stats["outbox"]["dead_letters"] == 0


def test_delivery_dead_letters_client_error(stack: Stack, account: str) -> None:
    service_url = url_of(stack.counter())
    set_faults(stack.mock_url, status=400)
    post_messages(service_url, account, 1)
    wait_until(lambda: metrics(service_url)["outbox"]["dead_letters"] == 1, WAIT_S)

    letters = dead_letters(stack.valkey.url, account)
    stats = metrics(service_url)
    assert len(letters) == 1
    assert letters[0]["account_id"] == account
    assert letters[0]["total"] == "1"
    assert letters[0]["last_status"] == "400"
    assert letters[0]["last_error"].startswith("HTTP 400")
    assert letters[0]["attempts"] == "1"
    assert mock_stats(stack.mock_url)["rejected"] == 1
    assert stats["dispatcher"]["retried"] == 0
    assert stats["dispatcher"]["dead_lettered"] == 1
    assert stats["outbox"]["backlog"] == 0


def test_delivery_dead_letters_expired_event(stack: Stack, account: str) -> None:
    service_url = url_of(stack.counter(env={"COUNTER_MAX_EVENT_AGE_SECONDS": "1"}))
    set_faults(stack.mock_url, status=500)
    post_messages(service_url, account, 1)
    wait_until(lambda: metrics(service_url)["outbox"]["dead_letters"] == 1, WAIT_S)

    letters = dead_letters(stack.valkey.url, account)
    assert len(letters) == 1
    assert letters[0]["last_error"].startswith("expired")
    assert letters[0]["last_status"] == "500"
    assert int(letters[0]["attempts"]) > 1
    assert int(letters[0]["dead_at"]) - stream_id_ms(letters[0]["outbox_id"]) >= 1000
    assert metrics(service_url)["outbox"]["backlog"] == 0


def deliver_after_outage(stack: Stack, account: str, mode: str) -> tuple[list[int], dict[str, Any]]:
    """Count 50 messages of one account and day while the mock is down, then bring it back.

    Returns the totals the mock received and the service's metrics once the outbox is empty.
    """
    service_url = url_of(stack.counter(env={"COUNTER_DELIVERY_MODE": mode}))
    set_faults(stack.mock_url, down=True)
    post_messages(service_url, account, 50)

    set_faults(stack.mock_url)
    wait_until(
        lambda: 50 in received_totals(stack.mock_url, account) and outbox_settled(service_url),
        WAIT_S,
    )
    return received_totals(stack.mock_url, account), metrics(service_url)


def test_latest_mode_coalesces_backlog(stack: Stack, account: str) -> None:
    totals, stats = deliver_after_outage(stack, account, "latest")

    dispatcher = stats["dispatcher"]
    # One delivery per day runs at a time and gives way to the newest waiting total, so
    # only the first total read and the last one should reach the receiver.
    assert len(totals) <= 3
    assert dispatcher["superseded"] >= 47
    assert max(totals) == 50
    assert dispatcher["delivered"] + dispatcher["superseded"] == 50
    assert stats["outbox"]["backlog"] == 0


def test_every_mode_delivers_every_total(stack: Stack, account: str) -> None:
    totals, stats = deliver_after_outage(stack, account, "every")

    assert totals == list(range(1, 51))
    assert stats["dispatcher"]["superseded"] == 0
    assert stats["outbox"]["backlog"] == 0


def test_dispatch_delivers_backlog_of_serve(stack: Stack, account: str) -> None:
    service_url = url_of(stack.counter(args=["--no-dispatcher"]))
    post_messages(service_url, account, 5)

    before = metrics(service_url)
    assert before["dispatcher"] is None
    assert before["outbox"]["backlog"] == 5
    assert mock_stats(stack.mock_url)["received"] == 0

    stack.counter(command="dispatch")
    wait_until(
        lambda: len(received_events(stack.mock_url, account)) == 5 and outbox_settled(service_url),
        WAIT_S,
    )
    assert received_totals(stack.mock_url, account) == [1, 2, 3, 4, 5]


def test_dispatch_claims_events_of_killed_dispatcher(stack: Stack, account: str) -> None:
    # A timeout above the mock's latency, so the first dispatcher's POSTs are still open
    # when it is killed rather than timed out and retried.
    env = {"COUNTER_DELIVERY_TIMEOUT_SECONDS": "10"}
    service_url = url_of(stack.counter(args=["--no-dispatcher"]))
    first = stack.counter(command="dispatch", env=env, name="dispatch-first")
    set_faults(stack.mock_url, latency_ms=3000)
    post_messages(service_url, account, 5)
    wait_until(lambda: stack.mock.output().count("delay_ms=3000") == 5, WAIT_S)

    first.kill()
    set_faults(stack.mock_url)
    second = stack.counter(command="dispatch", env=env, name="dispatch-second")
    wait_until(
        lambda: len(received_events(stack.mock_url, account)) == 5 and outbox_settled(service_url),
        WAIT_S,
    )

    assert received_totals(stack.mock_url, account) == [1, 2, 3, 4, 5]
    assert "claimed stale events" in second.output()


def test_two_dispatchers_deliver_without_duplicates(stack: Stack, account: str) -> None:
    service_url = url_of(stack.counter(args=["--no-dispatcher"]))
    dispatchers = [stack.counter(command="dispatch", name=f"dispatch-{side}") for side in "ab"]
    payloads = [message(f"{account}-{index % 8}", index) for index in range(200)]

    statuses = asyncio.run(post_all(f"{service_url}/webhooks/messages", payloads, concurrency=8))
    wait_until(
        lambda: mock_stats(stack.mock_url)["distinct"] == 200 and outbox_settled(service_url),
        WAIT_S,
    )
    stats = mock_stats(stack.mock_url)
    exit_codes = [dispatcher.stop() for dispatcher in dispatchers]
    delivered = [sum(delivered_counts(dispatcher.output())) for dispatcher in dispatchers]

    assert statuses == [202] * 200
    assert stats["duplicates"] == 0
    assert stats["received"] == 200
    assert stats["rejected"] == 0
    assert exit_codes == [0, 0]
    assert sum(delivered) == 200
    assert min(delivered) > 0


def test_serve_sigterm_drains_deliveries(stack: Stack, account: str) -> None:
    service = stack.counter()
    service_url = url_of(service)
    set_faults(stack.mock_url, latency_ms=1500)
    post_messages(service_url, account, 20)
    wait_until(lambda: metrics(service_url)["dispatcher"]["in_flight"] == 20, WAIT_S)

    stopping = time.monotonic()
    exit_code = service.stop()
    stop_s = time.monotonic() - stopping
    delivered_before_exit = received_totals(stack.mock_url, account)

    service.start()
    wait_until(
        lambda: len(received_events(stack.mock_url, account)) == 20 and outbox_settled(service_url),
        WAIT_S,
    )

    # 1.5 s of latency fits in the 2 s grace period, so every in-flight POST completes.
    assert delivered_before_exit == list(range(1, 21))
    assert received_totals(stack.mock_url, account) == list(range(1, 21))
    assert "dispatcher stopped" in service.output()
    # Checked last, so that a wrong exit code does not hide the delivery checks above.
    assert stop_s < MAX_STOP_S
    assert exit_code == 0
