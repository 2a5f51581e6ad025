"""Measurements for the benchmark: process trees, Valkey memory and locust's CSV files."""

from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import Any

import psutil
import redis

from counter import keys

RSS_SAMPLE_INTERVAL_S = 0.5
SCAN_BATCH = 1000
SEEN_KEY_SAMPLES = 200
COUNTED_KEY_PATTERN = f"{keys.PREFIX}:*:total:*"
SEEN_KEY_PATTERN = f"{keys.PREFIX}:*:seen:*"
HOURS_KEY_PATTERN = f"{keys.PREFIX}:*:hours:*"
# Percentile columns of locust's <prefix>_stats.csv, as they appear in the header.
PERCENTILES = ("50%", "95%", "99%")


def process_tree(pid: int) -> list[psutil.Process]:
    """Return the process and all its descendants, or [] once it has exited."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_rss_bytes(pid: int) -> int:
    """Sum the resident set size over a process tree, skipping processes that just exited."""
    total = 0
    for process in process_tree(pid):
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def tree_cpu_s(pid: int) -> float:
    """Sum user and system CPU seconds over the live processes of a tree."""
    total = 0.0
    for process in process_tree(pid):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def machine_cpu_s() -> dict[str, float]:
    """Return the machine's CPU seconds so far, summed over all CPUs: in total, idle, stolen,
    and in interrupts, which no process is charged for.

    Linux counts guest time inside user time, so the guest fields are left out of the total.
    """
    times = psutil.cpu_times()._asdict()
    counted = {state: seconds for state, seconds in times.items() if not state.startswith("guest")}
    return {
        "total": sum(counted.values()),
        "idle": counted["idle"] + counted.get("iowait", 0.0),
        "steal": counted.get("steal", 0.0),
        "interrupts": counted.get("irq", 0.0) + counted.get("softirq", 0.0),
    }


class PeakRss:
    """Samples the RSS of a process tree in a thread and keeps the highest value."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_bytes = tree_rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_INTERVAL_S):
            self.peak_bytes = max(self.peak_bytes, tree_rss_bytes(self.pid))


def valkey_memory(client: redis.Redis) -> dict[str, int]:
    """Return Valkey's memory in bytes: used_memory, and used_memory without buffers.

    The buffers of client connections and of the append-only file grow with the number of
    connections and the write rate, not with the stored data, so `without_buffers` is the
    figure to divide by the number of stored messages.
    """
    stats = client.memory_stats()
    used = int(stats["total.allocated"])
    buffers = int(stats["clients.normal"]) + int(stats["aof.buffer"])
    return {
        "used_memory": used,
        "without_buffers": used - buffers,
        "dataset": int(stats["dataset.bytes"]),
        "keys": int(stats["keys.count"]),
    }


def connected_clients(client: redis.Redis) -> int:
    """Return how many client connections Valkey has open, this benchmark's own included."""
    return int(client.info("clients")["connected_clients"])


def counted_messages(client: redis.Redis) -> int:
    """Sum the running totals of every account and day, which is every counted message."""
    names = list(client.scan_iter(match=COUNTED_KEY_PATTERN, count=SCAN_BATCH))
    total = 0
    for start in range(0, len(names), SCAN_BATCH):
        values = client.mget(names[start : start + SCAN_BATCH])
        total += sum(int(value) for value in values if value is not None)
    return total


def memory_breakdown(client: redis.Redis, counted: int, shard_count: int) -> dict[str, Any]:
    """Split Valkey memory by key kind with MEMORY USAGE, per counted message where it applies.

    MEMORY USAGE is Valkey's own estimate for one key, so these figures are estimates. The
    growth of used_memory is the measured total.
    """
    seen_sizes = [
        _memory_usage(client, name)
        for name in _first_keys(client, SEEN_KEY_PATTERN, SEEN_KEY_SAMPLES)
    ]
    hours_names = list(client.scan_iter(match=HOURS_KEY_PATTERN, count=SCAN_BATCH))
    total_names = list(client.scan_iter(match=COUNTED_KEY_PATTERN, count=SCAN_BATCH))
    hours_bytes = sum(_memory_usage(client, name) for name in hours_names)
    totals_bytes = sum(_memory_usage(client, name) for name in total_names)
    outbox_names = [keys.outbox_key(shard) for shard in range(shard_count)]
    outbox_bytes = sum(_memory_usage(client, name) for name in outbox_names)
    outbox_length = sum(int(client.xlen(name)) for name in outbox_names)
    return {
        "seen_key_bytes_avg": _ratio(sum(seen_sizes), len(seen_sizes)),
        "seen_keys_sampled": len(seen_sizes),
        "hours_keys": len(hours_names),
        "hours_bytes_per_message": _ratio(hours_bytes, counted),
        "total_keys": len(total_names),
        "totals_bytes_per_message": _ratio(totals_bytes, counted),
        "outbox_entries": outbox_length,
        "outbox_bytes": outbox_bytes,
        "outbox_bytes_per_entry": _ratio(outbox_bytes, outbox_length),
    }


def _first_keys(client: redis.Redis, pattern: str, limit: int) -> list[bytes]:
    found: list[bytes] = []
    for name in client.scan_iter(match=pattern, count=SCAN_BATCH):
        found.append(name)
        if len(found) >= limit:
            break
    return found


def _memory_usage(client: redis.Redis, name: bytes | str) -> int:
    # SAMPLES 0 measures every element of a hash or stream instead of extrapolating from 5.
    return int(client.memory_usage(name, samples=0) or 0)


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 1) if denominator else None


def read_locust_stats(csv_prefix: Path) -> dict[str, dict[str, float | None]]:
    """Read <prefix>_stats.csv into {request name: counts, rate and latency percentiles}."""
    rows: dict[str, dict[str, float | None]] = {}
    with Path(f"{csv_prefix}_stats.csv").open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            rows[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "requests_per_s": round(float(row["Requests/s"]), 1),
                "average_ms": round(float(row["Average Response Time"]), 1),
                **{f"p{column[:-1]}_ms": _number(row[column]) for column in PERCENTILES},
            }
    return rows


def read_locust_failures(csv_prefix: Path) -> list[dict[str, str]]:
    """Read <prefix>_failures.csv: one row per distinct request name and error."""
    path = Path(f"{csv_prefix}_failures.csv")
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _number(cell: str) -> float | None:
    """Parse a percentile cell, which locust writes as N/A when there were no requests."""
    return None if cell in ("", "N/A") else float(cell)
