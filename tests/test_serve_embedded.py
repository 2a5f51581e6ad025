"""`counter serve` without COUNTER_REDIS_URL: the embedded Valkey it starts, stops and reuses.

Also the start-up check that the shard count matches the one the data was written with.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from counter.embedded import EmbeddedValkey
from counter.errors import ConfigError
from tests.support.client import request, wait_until
from tests.support.processes import ManagedProcess, free_port
from tests.support.stack import service_process, start_valkey, url_of

MESSAGE_COUNT = 20
DAY = "2025-09-18"
VALKEY_EXIT_TIMEOUT_S = 10.0


@pytest.fixture
def orphans() -> Iterator[list[psutil.Process]]:
    """Collect the valkey-server processes a test saw, and terminate those still running after it.

    A serve process that dies without stopping its Valkey leaves it running, holding its
    port and data folder, so the test cleans it up by PID.
    """
    seen: list[psutil.Process] = []
    yield seen
    running = [process for process in seen if process.is_running()]
    for process in running:
        process.terminate()
    _, alive = psutil.wait_procs(running, timeout=VALKEY_EXIT_TIMEOUT_S)
    for process in alive:
        process.kill()


def embedded_serve(tmp_path: Path, mock_url: str, workers: int) -> ManagedProcess:
    """Describe `counter serve` with no Redis URL, so that it starts Valkey in tmp_path/data."""
    return service_process(
        tmp_path,
        None,
        f"{mock_url}/daily-totals",
        env={
            "COUNTER_REDIS_URL": "",
            "COUNTER_DATA_DIR": str(tmp_path / "data"),
            "COUNTER_EMBEDDED_PORT": str(free_port()),
        },
        args=["--workers", str(workers)],
        name=f"serve-embedded-{workers}",
    )


def valkey_descendants(pid: int) -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process(pid).children(recursive=True)
        if child.name() == "valkey-server"
    ]


def post_messages(service_url: str, account: str) -> list[int]:
    """POST MESSAGE_COUNT messages of one account and hour, and return the statuses."""
    statuses = []
    for index in range(MESSAGE_COUNT):
        message = {
            "message_id": f"m-{index}",
            "account_id": account,
            "created_at": f"{DAY}T10:{index:02d}:00Z",
        }
        statuses.append(request("POST", f"{service_url}/webhooks/messages", json=message).status)
    return statuses


def hourly_counts(service_url: str, account: str) -> list[int]:
    reply = request(
        "GET",
        f"{service_url}/counts?account_id={account}&from={DAY}T00:00:00Z&to={DAY}T23:59:59Z",
    )
    assert reply.status == 200, reply.body
    return [item["count_messages"] for item in reply.json()]


def test_serve_embedded_restart_keeps_counts(
    tmp_path: Path, mock_url: str, account: str, orphans: list[psutil.Process]
) -> None:
    serve = embedded_serve(tmp_path, mock_url, workers=2)
    try:
        serve.start()
        service_url = url_of(serve)
        first_statuses = post_messages(service_url, account)
        valkeys = valkey_descendants(serve.pid)
        orphans.extend(valkeys)

        exit_code = serve.stop()
        _, still_running = psutil.wait_procs(valkeys, timeout=VALKEY_EXIT_TIMEOUT_S)

        serve.start()
        counts_after_restart = hourly_counts(service_url, account)
        repeated_statuses = post_messages(service_url, account)
    finally:
        serve.stop()

    assert first_statuses == [202] * MESSAGE_COUNT
    assert len(valkeys) == 1
    assert exit_code == 0
    assert still_running == []
    assert counts_after_restart == [MESSAGE_COUNT]
    assert repeated_statuses == [200] * MESSAGE_COUNT


def test_serve_single_worker_sigterm_stops_valkey(
    tmp_path: Path, mock_url: str, orphans: list[psutil.Process]
) -> None:
    serve = embedded_serve(tmp_path, mock_url, workers=1)
    try:
        serve.start()
        valkeys = valkey_descendants(serve.pid)
        orphans.extend(valkeys)
        exit_code = serve.stop()
        _, still_running = psutil.wait_procs(valkeys, timeout=VALKEY_EXIT_TIMEOUT_S)
    finally:
        serve.stop()

    assert len(valkeys) == 1
    assert still_running == []
    assert exit_code == 0


def test_serve_rejects_changed_shard_count(tmp_path: Path, mock_url: str) -> None:
    valkey = start_valkey(tmp_path / "valkey")
    daily_total_url = f"{mock_url}/daily-totals"
    initialising = service_process(tmp_path, valkey.url, daily_total_url, name="shards-16")
    mismatched = service_process(
        tmp_path, valkey.url, daily_total_url, env={"COUNTER_SHARD_COUNT": "8"}, name="shards-8"
    )
    try:
        initialising.start()
        initialising.stop()
        with pytest.raises(RuntimeError, match="exited"):
            mismatched.start()
        exit_code = mismatched.stop()
    finally:
        initialising.stop()
        mismatched.stop()
        valkey.stop()

    assert exit_code is not None
    assert exit_code != 0
    assert "COUNTER_SHARD_COUNT" in mismatched.output()


def test_serve_restarts_killed_valkey(
    tmp_path: Path, mock_url: str, account: str, orphans: list[psutil.Process]
) -> None:
    serve = embedded_serve(tmp_path, mock_url, workers=1)
    try:
        serve.start()
        service_url = url_of(serve)
        first_statuses = post_messages(service_url, account)
        [valkey] = valkey_descendants(serve.pid)
        orphans.append(valkey)

        valkey.kill()
        valkey.wait(VALKEY_EXIT_TIMEOUT_S)
        wait_until(lambda: request("GET", f"{service_url}/readyz").status == 200, 30)
        replacements = valkey_descendants(serve.pid)
        orphans.extend(replacements)
        counts_after_restart = hourly_counts(service_url, account)
    finally:
        serve.stop()

    assert first_statuses == [202] * MESSAGE_COUNT
    assert len(replacements) == 1
    assert replacements[0].pid != valkey.pid
    assert counts_after_restart == [MESSAGE_COUNT]
    assert "embedded valkey exited" in serve.output()


def test_serve_rejects_busy_embedded_port(tmp_path: Path, mock_url: str) -> None:
    squatter = start_valkey(tmp_path / "squatter")
    serve = service_process(
        tmp_path,
        None,
        f"{mock_url}/daily-totals",
        env={
            "COUNTER_REDIS_URL": "",
            "COUNTER_DATA_DIR": str(tmp_path / "data"),
            "COUNTER_EMBEDDED_PORT": str(squatter.port),
        },
        name="serve-busy-port",
    )
    try:
        with pytest.raises(RuntimeError, match="exited"):
            serve.start()
    finally:
        serve.stop()
        squatter.stop()

    assert "COUNTER_EMBEDDED_PORT" in serve.output()
    assert "Traceback" not in serve.output()


def test_embedded_valkey_rejects_data_dir_in_use(tmp_path: Path) -> None:
    first = start_valkey(tmp_path / "data")
    second = EmbeddedValkey(tmp_path / "data", port=free_port())
    try:
        with pytest.raises(ConfigError, match=f"pid {first.process.pid if first.process else 0}"):
            second.start()
    finally:
        second.stop()
        first.stop()
