"""The real components of an end-to-end test: Valkey, the mock receiver and the service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from counter.embedded import EmbeddedValkey
from tests.support.processes import ManagedProcess, free_port, python_module

# Fast retries and claims, so delivery tests finish in seconds rather than minutes.
FAST_DELIVERY_ENV = {
    "COUNTER_RETRY_BASE_SECONDS": "0.05",
    "COUNTER_RETRY_CAP_SECONDS": "0.5",
    "COUNTER_CLAIM_IDLE_SECONDS": "2",
    "COUNTER_SHUTDOWN_GRACE_SECONDS": "2",
    "COUNTER_DELIVERY_TIMEOUT_SECONDS": "2",
}


def start_valkey(data_dir: Path) -> EmbeddedValkey:
    server = EmbeddedValkey(data_dir, port=free_port())
    server.start()
    return server


def mock_process(log_dir: Path, *args: str, port: int | None = None) -> ManagedProcess:
    port = port or free_port()
    return ManagedProcess(
        f"mock-{port}",
        python_module("mock_external", "--port", str(port), *args),
        ready_url=f"http://127.0.0.1:{port}/healthz",
        log_dir=log_dir,
        env={"MOCK_EXTERNAL_SECRET": ""},
    )


def service_process(
    log_dir: Path,
    redis_url: str | None,
    daily_total_url: str,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    command: str = "serve",
    port: int | None = None,
    name: str | None = None,
) -> ManagedProcess:
    """Describe a `counter serve` process (or another `counter` command) with test settings."""
    port = port or free_port()
    full_env = {
        **FAST_DELIVERY_ENV,
        "COUNTER_DAILY_TOTAL_URL": daily_total_url,
        "COUNTER_WEBHOOK_SECRET": "",
        "COUNTER_DAILY_TOTAL_SECRET": "",
        **(env or {}),
    }
    if redis_url is not None:
        full_env["COUNTER_REDIS_URL"] = redis_url
    argv = python_module("counter", command)
    ready_url = f"http://127.0.0.1:{port}/readyz"
    ready_text = None
    if command == "serve":
        argv += ["--port", str(port)]
    else:
        ready_text = "dispatcher started"
    return ManagedProcess(
        name or f"{command}-{port}",
        [*argv, *args],
        ready_url,
        log_dir,
        env=full_env,
        ready_text=ready_text,
    )


def url_of(process: ManagedProcess) -> str:
    """Return the base URL of a process from its readiness URL."""
    return process.ready_url.rsplit("/", 1)[0]
