"""Markdown tables of a benchmark run, built from the results that run.py collects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Request names given in locustfile.py, and locust's name for the sum of all requests.
WEBHOOK_NAME = "POST /webhooks/messages"
COUNTS_NAME = "GET /counts"
ALL_REQUESTS_NAME = "Aggregated"
MIB = 1024 * 1024
CPU_PARTS = ("service", "valkey", "mock")


def render_report(results: Mapping[str, Any]) -> str:
    scenarios = results["scenarios"]
    sections = [
        machine_line(results["machine"], results["load"]),
        throughput_table(scenarios),
        delivery_table(scenarios),
        resources_table(scenarios, results["machine"]["cpu_count"]),
        memory_table(scenarios),
        failures_list(scenarios),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def machine_line(machine: Mapping[str, Any], load: Mapping[str, Any]) -> str:
    return (
        f"{machine['cpu_count']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_bytes'] / 2**30:.0f} GiB RAM, Python {machine['python']}, "
        f"{machine['valkey']}, locust {machine['locust']}. "
        f"Each scenario: {load['users']} users for {load['run_time_s']} s, "
        f"{load['duplicate_share']:.0%} of webhooks resent."
    )


def throughput_table(scenarios: Sequence[Mapping[str, Any]]) -> str:
    header = [
        "scenario",
        "req/s",
        "POST req/s",
        "POST p50 / p95 / p99 ms",
        "GET req/s",
        "GET p50 / p95 / p99 ms",
        "failed requests",
    ]
    rows = []
    for result in scenarios:
        stats = result["locust"]["stats"]
        webhooks = stats.get(WEBHOOK_NAME, {})
        counts = stats.get(COUNTS_NAME, {})
        everything = stats.get(ALL_REQUESTS_NAME, {})
        rows.append(
            [
                result["scenario"]["name"],
                _value(everything.get("requests_per_s")),
                _value(webhooks.get("requests_per_s")),
                _percentiles(webhooks),
                _value(counts.get("requests_per_s")),
                _percentiles(counts),
                f"{everything.get('failures', 0)} of {everything.get('requests', 0)}",
            ]
        )
    return markdown_table(header, rows)


def delivery_table(scenarios: Sequence[Mapping[str, Any]]) -> str:
    header = [
        "scenario",
        "counted in Valkey",
        "202 / 200 seen by locust",
        "outbox backlog (pending) at end",
        "oldest undelivered at end",
        "no unread events after",
        "outbox empty after",
        "events at mock: distinct (repeated)",
    ]
    rows = []
    for result in scenarios:
        outcomes = result["locust"]["outcomes"]
        outbox = result["metrics_at_end"]["outbox"]
        receiver = result["receiver_stats"]
        rows.append(
            [
                result["scenario"]["name"],
                str(result["counted"]),
                f"{outcomes.get('counted', 0)} / {outcomes.get('duplicate', 0)}",
                f"{outbox['backlog']} ({outbox['pending']})",
                _seconds(outbox["oldest_age_s"]),
                _unread_cell(result["drain"]),
                _drain_cell(result["drain"]),
                f"{receiver['distinct']} ({receiver['duplicates']})",
            ]
        )
    return markdown_table(header, rows)


def resources_table(scenarios: Sequence[Mapping[str, Any]], cpu_count: int) -> str:
    header = [
        "scenario",
        "service RSS MiB: before → after (peak)",
        "Valkey used_memory MiB: before → after load",
        "CPU s: service / Valkey / mock / locust",
        "CPU busy: these processes / whole machine",
        "Valkey clients after load",
    ]
    rows = []
    for result in scenarios:
        before, after = result["before"], result["after"]
        cpu = [after["cpu_s"][part] - before["cpu_s"][part] for part in CPU_PARTS]
        cpu.append(result["locust"]["cpu_s"])
        machine = {
            state: after["machine_cpu_s"][state] - before["machine_cpu_s"][state]
            for state in ("total", "idle")
        }
        ours = sum(cpu) / machine["total"]
        everything = 1 - machine["idle"] / machine["total"]
        rows.append(
            [
                result["scenario"]["name"],
                f"{_mib(before['service_rss_bytes'])} → {_mib(after['service_rss_bytes'])} "
                f"({_mib(result['service_rss_peak_bytes'])})",
                f"{_mib(before['valkey']['used_memory'])} → {_mib(after['valkey']['used_memory'])}",
                " / ".join(f"{seconds:.1f}" for seconds in cpu),
                f"{ours:.0%} / {everything:.0%} of {cpu_count} CPUs",
                str(after["valkey_connected_clients"]),
            ]
        )
    return markdown_table(header, rows)


def memory_table(scenarios: Sequence[Mapping[str, Any]]) -> str:
    header = [
        "scenario",
        "used_memory growth",
        "growth without buffers",
        "bytes per counted message, without buffers",
        "seen key, bytes",
        "hours hashes, bytes per message",
        "day totals, bytes per message",
        "outbox, bytes per entry",
    ]
    rows = []
    for result in scenarios:
        before, final = result["before"]["valkey"], result["valkey_after_drain"]
        growth = final["used_memory"] - before["used_memory"]
        data_growth = final["without_buffers"] - before["without_buffers"]
        breakdown = result["memory_breakdown"]
        outbox_note = "" if result["drain"] is not None else " (outbox kept)"
        rows.append(
            [
                result["scenario"]["name"],
                f"{_mib(growth)} MiB{outbox_note}",
                f"{_mib(data_growth)} MiB",
                _value(data_growth / result["counted"] if result["counted"] else None),
                _value(breakdown["seen_key_bytes_avg"]),
                _value(breakdown["hours_bytes_per_message"]),
                _value(breakdown["totals_bytes_per_message"]),
                _value(breakdown["outbox_bytes_per_entry"]),
            ]
        )
    return markdown_table(header, rows)


def failures_list(scenarios: Sequence[Mapping[str, Any]]) -> str:
    """List locust's failures and the service's warning lines, or return "" if there were none."""
    lines = []
    for result in scenarios:
        name = result["scenario"]["name"]
        for failure in result["locust"]["failures"]:
            error, occurrences = failure["Error"], failure["Occurrences"]
            lines.append(f"- {name}: {failure['Name']}: {error}, occurrences: {occurrences}")
        problems = result["service_log_problems"]
        if problems["count"]:
            lines.append(f"- {name}: {problems['count']} warning or error lines in the service log")
            lines.extend(f"  - `{line}`" for line in problems["examples"])
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [_row(header), _row(["---"] * len(header))]
    lines.extend(_row(row) for row in rows)
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _percentiles(stats: Mapping[str, Any]) -> str:
    return " / ".join(_value(stats.get(key)) for key in ("p50_ms", "p95_ms", "p99_ms"))


def _unread_cell(drain: Mapping[str, Any] | None) -> str:
    if drain is None:
        return "no dispatcher"
    if drain["unread_gone_s"] is None:
        return f"not within {drain['waited_s']:.0f} s"
    return _seconds(drain["unread_gone_s"])


def _drain_cell(drain: Mapping[str, Any] | None) -> str:
    if drain is None:
        return "no dispatcher"
    if drain["drained"]:
        return f"{drain['waited_s']:.1f} s"
    return f"not within {drain['waited_s']:.0f} s (backlog {drain['outbox']['backlog']})"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _mib(size_bytes: int) -> str:
    return f"{size_bytes / MIB:.1f}"


def _value(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}"
