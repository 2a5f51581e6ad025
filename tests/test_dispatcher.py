"""The dispatcher against a real Valkey, with a recording sender in place of HTTP."""

from __future__ import annotations

import asyncio
import time

import redis

from counter import keys
from counter.dispatcher import Dispatcher
from counter.embedded import EmbeddedValkey
from counter.outbox import Outbox, OutboxEvent
from counter.retry import Verdict
from counter.runtime import connect
from counter.sender import DeliveryOutcome
from counter.settings import Settings

SHARDS = 16
RUN_TIMEOUT_S = 30.0
POLL_S = 0.02


class RecordingSender:
    """Stands in for counter.sender.Sender: records every POST and returns the set outcome."""

    url = "http://receiver.test/daily-totals"

    def __init__(self, delay_s: float = 0.0, outcome: DeliveryOutcome | None = None) -> None:
        self.delay_s = delay_s
        self.outcome = outcome or DeliveryOutcome(Verdict.DELIVERED, 200)
        self.sent: list[str] = []
        self.active = 0
        self.max_active = 0

    async def send(self, event_id: str, body: bytes) -> DeliveryOutcome:
        self.sent.append(event_id)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.active -= 1
        return self.outcome


def add_events(own_valkey: EmbeddedValkey, per_shard: int) -> None:
    client = redis.Redis.from_url(own_valkey.url, decode_responses=True)
    try:
        for shard in range(SHARDS):
            for total in range(1, per_shard + 1):
                client.xadd(
                    keys.outbox_key(shard),
                    {
                        "account_id": f"acc-{shard}",
                        "date": "2025-09-18",
                        "total": str(total),
                        "message_id": f"m-{shard}-{total}",
                        "computed_at": "1758190500000",
                    },
                )
    finally:
        client.close()


def settings_for(own_valkey: EmbeddedValkey, **changes: object) -> Settings:
    return Settings(redis_url=own_valkey.url, shard_count=SHARDS).with_changes(**changes)


async def wait_for(check, timeout_s: float = RUN_TIMEOUT_S) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(POLL_S)


class Running:
    """A dispatcher task with its own Redis client, stopped and closed on exit."""

    def __init__(self, settings: Settings, sender: RecordingSender, name: str) -> None:
        self.redis = connect(settings)
        self.outbox = Outbox(self.redis, SHARDS, name)
        self.dispatcher = Dispatcher(self.outbox, sender, settings)  # type: ignore[arg-type]
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Dispatcher:
        await self.outbox.ensure_groups()
        self.task = asyncio.create_task(self.dispatcher.run())
        return self.dispatcher

    async def __aexit__(self, *exc_info: object) -> None:
        self.dispatcher.stop()
        if self.task is not None:
            await self.task
        await self.redis.aclose()


def test_dispatcher_respects_concurrency_across_shards(own_valkey: EmbeddedValkey) -> None:
    add_events(own_valkey, per_shard=2)
    sender = RecordingSender(delay_s=0.01)

    async def run() -> Dispatcher:
        async with Running(
            settings_for(own_valkey, delivery_concurrency=1), sender, "a"
        ) as dispatcher:
            await wait_for(lambda: dispatcher.stats.delivered == 2 * SHARDS)
        return dispatcher

    dispatcher = asyncio.run(run())

    assert sender.max_active == 1
    assert dispatcher.stats.delivered == 2 * SHARDS
    assert len(set(sender.sent)) == 2 * SHARDS


def test_slow_post_is_not_claimed_by_another(own_valkey: EmbeddedValkey) -> None:
    add_events(own_valkey, per_shard=1)
    settings = settings_for(own_valkey, claim_idle_seconds=0.6, shutdown_grace_seconds=5)
    slow = RecordingSender(delay_s=2.5)
    fast = RecordingSender()

    async def run() -> tuple[Dispatcher, Dispatcher]:
        async with Running(settings, slow, "slow") as first:
            await wait_for(lambda: len(slow.sent) == SHARDS)
            async with Running(settings, fast, "fast") as second:
                await wait_for(lambda: first.stats.delivered == SHARDS)
                await asyncio.sleep(settings.claim_idle_seconds * 2)
        return first, second

    first, second = asyncio.run(run())

    assert second.stats.claimed == 0
    assert fast.sent == []
    assert first.stats.delivered == SHARDS


def test_shutdown_keeps_claim_off_finishing_posts(own_valkey: EmbeddedValkey) -> None:
    add_events(own_valkey, per_shard=1)
    settings = settings_for(own_valkey, claim_idle_seconds=0.6, shutdown_grace_seconds=5)
    slow = RecordingSender(delay_s=4.0)
    fast = RecordingSender()

    async def run() -> tuple[Dispatcher, Dispatcher]:
        slow_run = Running(settings, slow, "slow")
        first = await slow_run.__aenter__()
        await wait_for(lambda: len(slow.sent) == SHARDS)
        async with Running(settings, fast, "fast") as second:
            await slow_run.__aexit__()  # drains the 4 s POSTs, far past the claim idle time
            await asyncio.sleep(settings.claim_idle_seconds * 2)
        return first, second

    first, second = asyncio.run(run())

    assert first.stats.delivered == SHARDS
    assert fast.sent == []
    assert second.stats.claimed == 0


def test_malformed_entry_does_not_stop_dispatcher(own_valkey: EmbeddedValkey) -> None:
    client = redis.Redis.from_url(own_valkey.url, decode_responses=True)
    client.xadd(keys.outbox_key(0), {"account_id": "acc-0", "total": "x"})
    client.close()
    add_events(own_valkey, per_shard=1)
    sender = RecordingSender()

    async def run() -> Dispatcher:
        async with Running(settings_for(own_valkey), sender, "a") as dispatcher:
            await wait_for(lambda: dispatcher.stats.delivered == SHARDS)
        return dispatcher

    dispatcher = asyncio.run(run())

    assert dispatcher.error is None
    assert dispatcher.stats.delivered == SHARDS


def test_retry_after_zero_keeps_backoff(own_valkey: EmbeddedValkey) -> None:
    add_events(own_valkey, per_shard=1)
    busy = DeliveryOutcome(Verdict.RETRY, 503, retry_after_s=0.0, error="HTTP 503")
    sender = RecordingSender(outcome=busy)
    settings = settings_for(own_valkey, retry_base_seconds=0.2, retry_cap_seconds=1.0)

    async def run() -> None:
        async with Running(settings, sender, "a"):
            await asyncio.sleep(1.0)

    asyncio.run(run())

    # Without the backoff floor each of the 16 events retries in a tight loop: thousands
    # of POSTs in a second. With it, an event makes a handful of attempts.
    assert len(sender.sent) < SHARDS * 10


class BrokenAckOutbox(Outbox):
    """An outbox whose acknowledgement fails with an unexpected error, as a bug would."""

    async def ack(self, events: list[OutboxEvent]) -> None:
        raise RuntimeError("ack is broken")


def test_failed_acker_stops_dispatcher(own_valkey: EmbeddedValkey) -> None:
    add_events(own_valkey, per_shard=1)
    settings = settings_for(own_valkey)
    sender = RecordingSender()

    async def run() -> Dispatcher:
        running = Running(settings, sender, "a")
        running.dispatcher.outbox = BrokenAckOutbox(running.redis, SHARDS, "a")
        async with running as dispatcher:
            await asyncio.wait_for(dispatcher.finished.wait(), RUN_TIMEOUT_S)
        return dispatcher

    dispatcher = asyncio.run(run())
    client = redis.Redis.from_url(own_valkey.url, decode_responses=True)
    pending = sum(
        client.xpending(keys.outbox_key(shard), "dispatchers")["pending"] for shard in range(SHARDS)
    )
    client.close()

    assert isinstance(dispatcher.error, RuntimeError)
    assert dispatcher.stats.delivered == 0
    assert pending == SHARDS


def test_stopped_dispatcher_leaves_group(own_valkey: EmbeddedValkey) -> None:
    add_events(own_valkey, per_shard=1)
    sender = RecordingSender()

    async def run() -> None:
        async with Running(settings_for(own_valkey), sender, "leaving") as dispatcher:
            await wait_for(lambda: dispatcher.stats.delivered == SHARDS)

    asyncio.run(run())
    client = redis.Redis.from_url(own_valkey.url, decode_responses=True)
    consumers = [
        consumer["name"]
        for shard in range(SHARDS)
        for consumer in client.xinfo_consumers(keys.outbox_key(shard), "dispatchers")
    ]
    client.close()

    assert consumers == []


def test_dispatcher_with_pending_events_stays_in_group(own_valkey: EmbeddedValkey) -> None:
    add_events(own_valkey, per_shard=1)
    settings = settings_for(own_valkey, shutdown_grace_seconds=0)
    sender = RecordingSender(delay_s=30.0)

    async def run() -> None:
        async with Running(settings, sender, "holding"):
            await wait_for(lambda: len(sender.sent) == SHARDS)

    asyncio.run(run())
    client = redis.Redis.from_url(own_valkey.url, decode_responses=True)
    pending = [
        consumer["pending"]
        for shard in range(SHARDS)
        for consumer in client.xinfo_consumers(keys.outbox_key(shard), "dispatchers")
        if consumer["name"] == "holding"
    ]
    client.close()

    assert pending == [1] * SHARDS
