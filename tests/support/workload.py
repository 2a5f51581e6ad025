"""Message workloads with duplicates, their reference counts, and checks against them."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from tests.support.client import post_all, request

SECONDS_PER_DAY = 24 * 3600
FIRST_DAY = datetime(2025, 9, 17, tzinfo=UTC)


@dataclass
class Workload:
    """Messages to send in order, and what counting them exactly once must produce."""

    messages: list[dict[str, Any]]
    unique_count: int
    hourly: dict[str, Counter[str]] = field(default_factory=dict)
    daily: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def accounts(self) -> list[str]:
        return sorted(self.hourly)


def build_workload(
    accounts: list[str], unique_count: int, duplicate_count: int, days: int, rng: random.Random
) -> Workload:
    """Build shuffled messages over `days` days from FIRST_DAY with resent duplicates.

    Half of the resent duplicates write the same instant in another offset, which must
    still count as a duplicate. Message ids contain `:`, `{`, `}`, a space and non-ASCII.
    """
    unique = []
    for index in range(unique_count):
        offset = timedelta(
            seconds=rng.randrange(days * SECONDS_PER_DAY), microseconds=rng.randrange(10**6)
        )
        unique.append(
            {
                "message_id": f"wamid.{index}:{{x}} ü",
                "account_id": rng.choice(accounts),
                "created_at": (FIRST_DAY + offset).isoformat().replace("+00:00", "Z"),
                "metadata": {"channel": "whatsapp"},
            }
        )
    duplicates = []
    for original in rng.choices(unique, k=duplicate_count):
        copy = dict(original)
        if rng.random() < 0.5:
            instant = datetime.fromisoformat(original["created_at"])
            copy["created_at"] = instant.astimezone(timezone(timedelta(hours=-3))).isoformat()
        duplicates.append(copy)
    messages = unique + duplicates
    rng.shuffle(messages)
    workload = Workload(messages, unique_count)
    workload.hourly, workload.daily = reference_counts(messages)
    return workload


def reference_counts(
    messages: list[dict[str, Any]],
) -> tuple[dict[str, Counter[str]], dict[tuple[str, str], int]]:
    """Compute hourly counts and day totals the slow, obvious way."""
    seen: set[tuple[str, str]] = set()
    hourly: dict[str, Counter[str]] = defaultdict(Counter)
    daily: Counter[tuple[str, str]] = Counter()
    for message in messages:
        key = (message["account_id"], message["message_id"])
        if key in seen:
            continue
        seen.add(key)
        instant = datetime.fromisoformat(message["created_at"]).astimezone(UTC)
        hourly[message["account_id"]][instant.strftime("%Y-%m-%dT%H:00:00Z")] += 1
        daily[(message["account_id"], instant.date().isoformat())] += 1
    return dict(hourly), dict(daily)


class BackgroundSender:
    """Posts a workload from a thread, retrying as a webhook sender would, and counts progress."""

    def __init__(self, url: str, messages: list[dict[str, Any]], concurrency: int) -> None:
        self.url = url
        self.messages = messages
        self.concurrency = concurrency
        self.progress = [0]
        self.statuses: list[int] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> list[int]:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"sender still running after {timeout_s}s")
        if self.error is not None:
            raise self.error
        return self.statuses

    def done_fraction(self) -> float:
        return self.progress[0] / len(self.messages)

    def _run(self) -> None:
        try:
            self.statuses = asyncio.run(
                post_all(self.url, self.messages, self.concurrency, progress=self.progress)
            )
        except BaseException as exc:  # re-raised in join(), on the test's thread
            self.error = exc


def hourly_counts(service_url: str, account_id: str, days: int) -> dict[str, int]:
    start = FIRST_DAY.strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (FIRST_DAY + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reply = request(
        "GET", f"{service_url}/counts?account_id={quote(account_id)}&from={start}&to={end}"
    )
    if reply.status != 200:
        raise AssertionError(f"/counts answered {reply.status}: {reply.body!r}")
    return {item["datetime"]: item["count_messages"] for item in reply.json()}


def received_events(mock_url: str, account_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = request(
        "GET", f"{mock_url}/daily-totals?account_id={quote(account_id)}"
    ).json()
    return events


def highest_totals(events: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    highest: dict[tuple[str, str], int] = defaultdict(int)
    for event in events:
        key = (event["account_id"], event["date"])
        highest[key] = max(highest[key], event["total"])
    return dict(highest)
