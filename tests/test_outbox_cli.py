"""`counter outbox status` and `counter outbox replay`, run as subprocesses against Valkey."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from counter.embedded import EmbeddedValkey
from counter.keys import shard_of
from tests.support.client import request, wait_until
from tests.support.processes import free_port
from tests.support.stack import mock_process, service_process, start_valkey, url_of

SHARD_COUNT = 16
WAIT_S = 20.0
CLI_TIMEOUT_S = 60.0
STATUS_COLUMNS = ["shard", "backlog", "pending", "oldest_age_s", "dead_letters"]
# Signing makes the service send each event's id as the webhook-id header, which the mock
# logs when it rejects a POST, so the ids of the first attempts can be compared later.
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def run_counter(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "counter", *args],
        env={**os.environ, "COUNTER_REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def outbox_status(redis_url: str) -> dict[str, dict[str, str]]:
    """Run `counter outbox status` and return its rows by shard, with `all` last."""
    result = run_counter(redis_url, "outbox", "status")
    assert result.returncode == 0, result.stderr
    header, *rows = [line.split() for line in result.stdout.splitlines()]
    assert header == STATUS_COLUMNS
    return {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in rows}


def dead_letter_totals(redis_url: str, account: str) -> list[int]:
    """Return the totals in the account's dead-letter stream, oldest dead letter first."""
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        entries = client.xrange(f"mc:{{{shard_of(account, SHARD_COUNT)}}}:dead")
    return [int(fields["total"]) for _, fields in entries]


def metrics(service_url: str) -> dict[str, Any]:
    reply = request("GET", f"{service_url}/metrics")
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.json()
    return body


def received_events(mock_url: str, account: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = request(
        "GET", f"{mock_url}/daily-totals?account_id={account}"
    ).json()
    return events


def test_outbox_replay_redelivers_dead_letters(tmp_path: Path, account: str) -> None:
    valkey = start_valkey(tmp_path / "valkey")
    mock = mock_process(tmp_path, "--fail-status", "400", "--secret", SECRET)
    mock_url = url_of(mock)
    service = service_process(
        tmp_path,
        valkey.url,
        f"{mock_url}/daily-totals",
        env={"COUNTER_DAILY_TOTAL_SECRET": SECRET},
    )
    try:
        mock.start()
        service.start()
        service_url = url_of(service)
        for index in range(3):
            message = {
                "message_id": f"m-{index}",
                "account_id": account,
                "created_at": "2025-09-18T10:15:00Z",
            }
            reply = request("POST", f"{service_url}/webhooks/messages", json=message)
            assert reply.status == 202, reply.body
        wait_until(lambda: metrics(service_url)["outbox"]["dead_letters"] == 3, WAIT_S)
        before = outbox_status(valkey.url)
        rejected_ids = set(re.findall(r"webhook_id=(\S+) status=400", mock.output()))
        dead_order = dead_letter_totals(valkey.url, account)

        fixed = request("PUT", f"{mock_url}/faults", json={})
        assert fixed.status == 200, fixed.body
        first_replay = run_counter(valkey.url, "outbox", "replay", "--limit", "2")
        assert first_replay.returncode == 0, first_replay.stderr
        assert "moved 2" in first_replay.stdout
        wait_until(lambda: len(received_events(mock_url, account)) == 2, WAIT_S)
        after_first = sorted(event["total"] for event in received_events(mock_url, account))
        second_replay = run_counter(valkey.url, "outbox", "replay")
        assert second_replay.returncode == 0, second_replay.stderr
        assert "moved 1" in second_replay.stdout
        wait_until(
            lambda: (
                len(received_events(mock_url, account)) == 3
                and metrics(service_url)["outbox"]["backlog"] == 0
            ),
            WAIT_S,
        )
        events = received_events(mock_url, account)
        after = outbox_status(valkey.url)
    finally:
        service.stop()
        mock.stop()
        valkey.stop()

    shard = str(shard_of(account, SHARD_COUNT))
    assert list(before) == [str(index) for index in range(SHARD_COUNT)] + ["all"]
    assert before[shard]["dead_letters"] == "3"
    assert before["all"]["dead_letters"] == "3"
    assert before["all"]["backlog"] == "0"
    assert len(rejected_ids) == 3
    assert sorted(dead_order) == [1, 2, 3]
    assert after_first == sorted(dead_order[:2])
    assert sorted(event["total"] for event in events) == [1, 2, 3]
    assert {event["event_id"] for event in events} == rejected_ids
    assert after["all"]["dead_letters"] == "0"
    assert after["all"]["backlog"] == "0"
    assert after["all"]["pending"] == "0"


def test_outbox_status_unreachable_redis_fails_cleanly() -> None:
    # A port that was free a moment ago, so nothing should be listening on it.
    result = run_counter(f"redis://127.0.0.1:{free_port()}/0", "outbox", "status")

    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.startswith("counter: ")
    assert "reading the shard count failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_outbox_status_without_embedded_valkey_hints(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "COUNTER_REDIS_URL"}
    env["COUNTER_EMBEDDED_PORT"] = str(free_port())
    env["COUNTER_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "counter", "outbox", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )

    assert result.returncode == 2
    assert f"No embedded Valkey answers on port {env['COUNTER_EMBEDDED_PORT']}" in result.stderr
    assert "COUNTER_EMBEDDED_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_outbox_status_leaves_empty_database_alone(tmp_path: Path) -> None:
    empty = start_valkey(tmp_path / "empty")
    try:
        result = run_counter(empty.url, "outbox", "status")
        client = redis.Redis.from_url(empty.url)
        keys_after = client.keys("*")
        client.close()
    finally:
        empty.stop()

    assert result.returncode == 0, result.stderr
    assert keys_after == []


def test_outbox_status_rejects_other_shard_count(valkey: EmbeddedValkey) -> None:
    client = redis.Redis.from_url(valkey.url)
    client.set("mc:shard-count", 16, nx=True)
    client.close()

    result = subprocess.run(
        [sys.executable, "-m", "counter", "outbox", "status"],
        env={**os.environ, "COUNTER_REDIS_URL": valkey.url, "COUNTER_SHARD_COUNT": "4"},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )

    assert result.returncode == 2
    assert "COUNTER_SHARD_COUNT" in result.stderr
    assert "Traceback" not in result.stderr


def test_outbox_replay_rejects_zero_limit(valkey: EmbeddedValkey) -> None:
    result = run_counter(valkey.url, "outbox", "replay", "--limit", "0")

    assert result.returncode == 2
    assert "must be 1 or more" in result.stderr


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"COUNTER_PORT": "abc"}, "COUNTER_PORT"),
        ({"COUNTER_WORKERS": "0"}, "COUNTER_WORKERS"),
        ({"COUNTER_DAILY_TOTAL_URL": "not-a-url"}, "COUNTER_DAILY_TOTAL_URL"),
    ],
    ids=["port-words", "no-workers", "bad-url"],
)
def test_serve_bad_setting_fails_cleanly(env: dict[str, str], variable: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "counter", "serve"],
        env={**os.environ, "COUNTER_REDIS_URL": "redis://127.0.0.1:1/0", **env},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.startswith(f"counter: {variable}")
    assert "Traceback" not in result.stderr


def test_serve_unreachable_redis_fails_cleanly() -> None:
    result = run_counter(f"redis://127.0.0.1:{free_port()}/0", "serve", "--port", str(free_port()))

    assert result.returncode == 2
    assert result.stderr.startswith("counter: reading the shard count failed")
    assert "Check that COUNTER_REDIS_URL names a running Redis" in result.stderr
    assert "Traceback" not in result.stderr


def test_outbox_status_http_port_names_setting(mock_url: str) -> None:
    port = mock_url.rsplit(":", 1)[1]

    result = run_counter(f"redis://127.0.0.1:{port}/0", "outbox", "status")

    assert result.returncode == 2
    assert result.stderr.startswith("counter: ")
    assert "Check that COUNTER_REDIS_URL names a running Redis" in result.stderr
    assert "Traceback" not in result.stderr
