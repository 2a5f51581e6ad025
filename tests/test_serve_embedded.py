"""`counter serve` without COUNTER_REDIS_URL: the embedded Valkey it starts, stops and reuses.

Also the start-up check that the shard count matches the one the data was written with.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from counter.embedded import EmbeddedValkey
from counter.errors import ConfigError
from tests.support.client import request, wait_until
from tests.support.processes import ManagedProcess, free_port
from tests.support.stack import service_process, start_valkey, url_of

MESSAGE_COUNT = 20
DAY = "2025-09-18"
VALKEY_EXIT_TIMEOUT_S = 10.0
# Workers shut down gracefully when their parent dies, which takes longer on a busy machine.
CHILD_EXIT_TIMEOUT_S = 30.0
KILL_AT_START_ROUNDS = 3
# 20,000 SET commands at 50 microseconds each keep Valkey loading for about a second.
LOADED_KEYS = 20_000
LOAD_DELAY_US = 50


@pytest.fixture
def orphans() -> Iterator[list[psutil.Process]]:
    """Collect the valkey-server processes a test saw, and terminate those still running after it.

    A test that fails halfway could leave a Valkey running, holding its port and data
    folder, so the fixture cleans it up by PID.
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


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_sigkill_stops_its_children(
    tmp_path: Path, mock_url: str, account: str, orphans: list[psutil.Process], workers: int
) -> None:
    serve = embedded_serve(tmp_path, mock_url, workers=workers)
    try:
        serve.start()
        service_url = url_of(serve)
        first_statuses = post_messages(service_url, account)
        children = psutil.Process(serve.pid).children(recursive=True)
        names = [child.name() for child in children]
        orphans.extend(children)
        orphans.extend(children)

        serve.kill()
        _, still_running = psutil.wait_procs(children, timeout=CHILD_EXIT_TIMEOUT_S)

        serve.start()
        counts_after_restart = hourly_counts(service_url, account)
    finally:
        serve.stop()

    assert first_statuses == [202] * MESSAGE_COUNT
    assert names.count("valkey-server") == 1
    assert len(names) >= workers
    assert still_running == []
    assert counts_after_restart == [MESSAGE_COUNT]


def test_serve_sigkill_while_workers_start(
    tmp_path: Path, mock_url: str, orphans: list[psutil.Process]
) -> None:
    # Killed as soon as one worker responds, the other may still be loading the app.
    survivors = []
    for _ in range(KILL_AT_START_ROUNDS):
        serve = embedded_serve(tmp_path, mock_url, workers=2)
        try:
            serve.start()
            children = psutil.Process(serve.pid).children(recursive=True)
            orphans.extend(children)
            serve.kill()
            _, alive = psutil.wait_procs(children, timeout=CHILD_EXIT_TIMEOUT_S)
            survivors.extend(alive)
        finally:
            serve.stop()

    assert survivors == []


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
        with pytest.raises(ConfigError) as caught:
            second.start()
    finally:
        second.stop()
        valkey_pid = first.process.pid if first.process else 0
        first.stop()

    assert f"`counter serve` (pid {os.getpid()})" in str(caught.value)
    assert f"Valkey server (pid {valkey_pid})" in str(caught.value)


def test_embedded_valkey_unusable_lock_file(tmp_path: Path) -> None:
    (tmp_path / "data" / "valkey.lock").mkdir(parents=True)
    server = EmbeddedValkey(tmp_path / "data", port=free_port())

    with pytest.raises(ConfigError, match=r"COUNTER_DATA_DIR=.* cannot be used"):
        server.start()


class SlowLoadingValkey(EmbeddedValkey):
    """An embedded Valkey that replays each command slowly, so that loading takes a while."""

    def command(self, port: int) -> list[str]:
        return [*super().command(port), "--key-load-delay", str(LOAD_DELAY_US)]


def test_embedded_valkey_start_waits_for_loading(tmp_path: Path) -> None:
    server = SlowLoadingValkey(tmp_path / "data", port=free_port())
    server.start()
    try:
        # One SET per key, because the load delay applies to each replayed command.
        with redis.Redis.from_url(server.url) as client, client.pipeline() as pipe:
            for index in range(LOADED_KEYS):
                pipe.set(f"key-{index}", "x")
            pipe.execute()
        server.stop()

        server.start()
        with redis.Redis.from_url(server.url) as client:
            loading = client.info("persistence")["loading"]
            keys = client.dbsize()
    finally:
        server.stop()

    assert loading == 0
    assert keys == LOADED_KEYS


def test_embedded_valkey_holds_folder_lock(tmp_path: Path) -> None:
    # Valkey inherits the locked file, so the folder stays taken if it outlives its owner.
    server = start_valkey(tmp_path / "data")
    try:
        assert server.process is not None
        open_files = [Path(item.path) for item in psutil.Process(server.process.pid).open_files()]
    finally:
        server.stop()

    assert server.lock_path in open_files
