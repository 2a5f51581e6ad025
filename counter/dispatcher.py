"""Delivers outbox events to the external service, at least once.

Each dispatcher is one consumer in the `dispatchers` group, so several processes share
the work. It keeps at most `delivery_concurrency` events in flight, retries transient
failures with jittered backoff, dead-letters permanent failures and events past their
maximum age, and takes over events that a crashed consumer left unacknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

from counter import contract
from counter.coalesce import DayKey, merge_latest
from counter.errors import StoreError
from counter.logs import LOG_INTERVAL_S, Throttle
from counter.outbox import Outbox, OutboxEvent
from counter.retry import Verdict, retry_delay_s
from counter.sender import DeliveryOutcome, Sender, redact_url
from counter.settings import DeliveryMode, Settings

logger = logging.getLogger(__name__)

READ_BLOCK_MS = 1000
# Delivered events are acknowledged together, up to this many in one script call.
ACK_BATCH_EVENTS = 256
# Scans for stale events per claim idle time, and idle-time refreshes per claim idle time.
CLAIM_SCANS_PER_IDLE = 2
HEARTBEATS_PER_IDLE = 3
# A blocking read waits at most this share of the Redis socket timeout.
READ_BLOCK_SHARE_OF_TIMEOUT = 0.5
# In `latest` mode the dispatcher keeps reading while every delivery slot is busy. It
# keeps the highest unsent total of each (account_id, date) in memory, and stops reading
# once it has this many (one read can pass the mark by up to a read batch).
MAX_WAITING_DAYS = 10_000
STORE_RETRY_S = 1.0
SLOT_WAIT_S = 1.0


@dataclass
class DispatcherStats:
    """Counters since start; /metrics and the tests read them."""

    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    superseded: int = 0
    claimed: int = 0
    store_errors: int = 0
    in_flight: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Dispatcher:
    """Reads the outbox and POSTs each event until the receiver accepts it."""

    def __init__(
        self,
        outbox: Outbox,
        sender: Sender,
        settings: Settings,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.sender = sender
        self.settings = settings
        self.rng = rng or random.Random()
        self.wall_clock = wall_clock
        self.stats = DispatcherStats()
        self._in_flight: dict[tuple[int, str], OutboxEvent] = {}
        # Read but not yet started, because a read can return more than the free slots.
        self._ready: deque[OutboxEvent] = deque()
        self._waiting: dict[DayKey, OutboxEvent] = {}
        self._days_in_flight: set[DayKey] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._next_claim_at = 0.0
        self._retry_log = Throttle(LOG_INTERVAL_S)
        self._store_log = Throttle(LOG_INTERVAL_S)
        self._dead_letter_log = Throttle(LOG_INTERVAL_S)
        # Delivered events waiting for their acknowledgement. None marks the end of the queue.
        self._acks: asyncio.Queue[OutboxEvent | None] = asyncio.Queue()
        self.finished = asyncio.Event()
        self.error: BaseException | None = None

    def stop(self) -> None:
        """Ask the dispatcher to stop reading; run() then drains and returns."""
        self._stopping.set()

    async def run(self) -> None:
        logger.info(
            "dispatcher started consumer=%s mode=%s url=%s concurrency=%d",
            self.outbox.consumer,
            self.settings.delivery_mode.value,
            redact_url(self.sender.url),
            self.settings.delivery_concurrency,
        )
        heartbeat = asyncio.create_task(self._keep_claimed_loop())
        acker = asyncio.create_task(self._ack_loop())
        for helper in (heartbeat, acker):
            helper.add_done_callback(self._helper_done)
        try:
            while not self._stopping.is_set():
                await self._step()
        except Exception as exc:
            self._crashed(exc)
            raise
        finally:
            try:
                # The heartbeat outlives the drain, so no one claims a POST that is finishing.
                await self._drain()
                self._acks.put_nowait(None)
                await asyncio.gather(acker, return_exceptions=True)
                heartbeat.cancel()
                await asyncio.gather(heartbeat, return_exceptions=True)
                await self._leave_group()
            finally:
                self.finished.set()
                logger.info(
                    "dispatcher stopped consumer=%s %s",
                    self.outbox.consumer,
                    self._stats_fields(),
                )

    async def _leave_group(self) -> None:
        """Remove this consumer from the group, so restarts do not pile up idle names."""
        try:
            still_listed = await self.outbox.forget_consumer()
        except StoreError as exc:
            self.stats.store_errors += 1
            self._log_store_error("leaving the consumer group", exc)
            return
        if still_listed:
            logger.info(
                "consumer stays in the group with pending events consumer=%s shards=%d",
                self.outbox.consumer,
                still_listed,
            )

    def _helper_done(self, task: asyncio.Task[None]) -> None:
        """Stop the dispatcher when the acker or the heartbeat fails, as if it had crashed."""
        if task.cancelled() or task.exception() is None:
            return
        self._crashed(task.exception())
        self.stop()

    def _crashed(self, exc: BaseException | None) -> None:
        if self.error is not None or exc is None:
            return
        self.error = exc
        logger.critical("dispatcher crashed consumer=%s", self.outbox.consumer, exc_info=exc)

    async def _step(self) -> None:
        if self.settings.delivery_mode is DeliveryMode.LATEST:
            await self._step_latest()
        else:
            await self._step_every()

    async def _step_every(self) -> None:
        """Fill free delivery slots with claimed or new events, or wait for a slot."""
        free = self._free_slots()
        if free <= 0:
            await self._wait_for_slot()
            return
        if not self._ready:
            self._ready.extend(await self._next_events(free))
        while self._ready and self._free_slots() > 0:
            self._start_delivery(self._ready.popleft())

    async def _step_latest(self) -> None:
        """Read and coalesce while deliveries run, and send the newest events as slots free up.

        Because superseded events are acknowledged at once, a backlog shrinks to one event
        per (account_id, date).
        """
        self._start_waiting()
        if len(self._waiting) >= MAX_WAITING_DAYS:
            await self._wait_for_slot()
            return
        events = await self._next_events(self.settings.read_batch_size)
        superseded = merge_latest(self._waiting, events)
        if superseded:
            try:
                await self.outbox.ack(superseded)
            except StoreError as exc:
                # Still pending: claimed and delivered later, which a receiver tolerates.
                self.stats.store_errors += 1
                self._log_store_error("acknowledging superseded events", exc)
            else:
                self.stats.superseded += len(superseded)
        self._start_waiting()

    def _start_waiting(self) -> None:
        """Start the oldest waiting events, at most one delivery per (account_id, date).

        A day that is being delivered keeps its newest event waiting; the running delivery
        gives way to it before its next retry (see `_gave_way`).
        """
        for day in list(self._waiting):
            if self._free_slots() <= 0:
                return
            if day not in self._days_in_flight:
                self._start_delivery(self._waiting.pop(day))

    async def _next_events(self, max_events: int) -> list[OutboxEvent]:
        """Return claimed stale events when a claim is due, else new ones; [] on a Redis error."""
        per_shard = math.ceil(
            min(max_events, self.settings.read_batch_size) / self.outbox.shard_count
        )
        try:
            if time.monotonic() >= self._next_claim_at:
                return await self._claim_stale(per_shard)
            return await self.outbox.read_new(per_shard, self._read_block_ms())
        except StoreError as exc:
            self.stats.store_errors += 1
            self._log_store_error("reading the outbox", exc)
            await self._wait(self._stopping, STORE_RETRY_S)
            return []

    async def _claim_stale(self, per_shard: int) -> list[OutboxEvent]:
        events = await self.outbox.claim_stale(self._claim_idle_ms(), per_shard)
        waiting = {self._key(event) for event in [*self._waiting.values(), *self._ready]}
        events = [
            event
            for event in events
            if self._key(event) not in self._in_flight and self._key(event) not in waiting
        ]
        self.stats.claimed += len(events)
        if events:
            logger.info("claimed stale events count=%d", len(events))
        else:
            scan_interval_s = self.settings.claim_idle_seconds / CLAIM_SCANS_PER_IDLE
            self._next_claim_at = time.monotonic() + scan_interval_s
        return events

    def _free_slots(self) -> int:
        return self.settings.delivery_concurrency - len(self._in_flight)

    async def _wait_for_slot(self) -> None:
        self._slot_freed.clear()
        await self._wait(self._slot_freed, SLOT_WAIT_S)

    def _start_delivery(self, event: OutboxEvent) -> None:
        key = self._key(event)
        if key in self._in_flight:
            return
        self._in_flight[key] = event
        if self.settings.delivery_mode is DeliveryMode.LATEST:
            self._days_in_flight.add(_day_of(event))
        task = asyncio.create_task(self._deliver(event))
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._delivery_done(key, done))
        self.stats.in_flight = len(self._in_flight)

    def _delivery_done(self, key: tuple[int, str], task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        event = self._in_flight.pop(key, None)
        if event is not None:
            self._days_in_flight.discard(_day_of(event))
        self.stats.in_flight = len(self._in_flight)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            shard, entry_id = key
            logger.error(
                "delivery task failed shard=%d entry_id=%s",
                shard,
                entry_id,
                exc_info=task.exception(),
            )

    async def _deliver(self, event: OutboxEvent) -> None:
        """POST one event until it is delivered, dead-lettered, or the dispatcher stops."""
        body_event = contract.build_event(event.record)
        body = contract.encode_event(body_event)
        event_id = body_event["event_id"]
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1 and await self._gave_way(event):
                return
            outcome = await self.sender.send(event_id, body)
            if outcome.verdict is Verdict.DELIVERED:
                self._acks.put_nowait(event)
                return
            if outcome.verdict is Verdict.PERMANENT or self._expired(event):
                await self._dead_letter(event, event_id, outcome, attempt)
                return
            delay_s = retry_delay_s(
                attempt,
                outcome.retry_after_s,
                self.settings.retry_base_seconds,
                self.settings.retry_cap_seconds,
                self.rng,
            )
            self.stats.retried += 1
            self._log_retry(event, event_id, attempt, outcome, delay_s)
            if await self._wait(self._stopping, delay_s):
                return  # left pending: the next dispatcher claims it

    async def _gave_way(self, event: OutboxEvent) -> bool:
        """In `latest` mode, drop a retried event once a newer total of its day is waiting."""
        newer = self._waiting.get(_day_of(event))
        if newer is None or newer.record.total <= event.record.total:
            return False
        try:
            await self.outbox.ack([event])
        except StoreError as exc:
            # Still pending: claimed and delivered later, which a receiver tolerates.
            self.stats.store_errors += 1
            self._log_store_error("acknowledging a superseded event", exc)
        else:
            self.stats.superseded += 1
        return True

    async def _ack_loop(self) -> None:
        """Acknowledge delivered events in batches: one Redis call for many deliveries."""
        while True:
            first = await self._acks.get()
            batch = [] if first is None else [first]
            ending = first is None
            while not self._acks.empty() and len(batch) < ACK_BATCH_EVENTS:
                queued = self._acks.get_nowait()
                if queued is None:
                    ending = True
                else:
                    batch.append(queued)
            if batch:
                await self._acknowledge(batch)
            if ending and self._acks.empty():
                return

    async def _acknowledge(self, events: list[OutboxEvent]) -> None:
        try:
            await self.outbox.ack(events)
        except StoreError as exc:
            # The events stay pending, so they are claimed and delivered again later.
            self.stats.store_errors += 1
            self._log_store_error("acknowledging delivered events", exc)
            return
        self.stats.delivered += len(events)

    async def _dead_letter(
        self, event: OutboxEvent, event_id: str, outcome: DeliveryOutcome, attempts: int
    ) -> None:
        reason = (
            outcome.error if outcome.verdict is Verdict.PERMANENT else f"expired: {outcome.error}"
        )
        try:
            moved = await self.outbox.dead_letter(event, outcome.status, reason, attempts)
        except StoreError as exc:
            self.stats.store_errors += 1
            self._log_store_error("dead-lettering an event", exc)
            return
        if not moved:
            return
        self.stats.dead_lettered += 1
        held_back = self._dead_letter_log.allow()
        if held_back is None:
            return
        logger.error(
            "event dead-lettered event_id=%s account_id=%s date=%s status=%s attempts=%d "
            "error=%s similar_held_back=%d",
            event_id,
            event.record.account_id,
            event.record.date,
            outcome.status,
            attempts,
            reason,
            held_back,
        )

    async def _keep_claimed_loop(self) -> None:
        """Refresh the idle time of in-flight events a few times per claim timeout."""
        interval_s = self.settings.claim_idle_seconds / HEARTBEATS_PER_IDLE
        while True:
            await asyncio.sleep(interval_s)
            owned = [*self._in_flight.values(), *self._waiting.values(), *self._ready]
            if not owned:
                continue
            try:
                await self.outbox.keep_claimed(owned)
            except StoreError as exc:
                self.stats.store_errors += 1
                self._log_store_error("refreshing in-flight events", exc)

    async def _drain(self) -> None:
        """Give in-flight POSTs the grace period, then cancel them; unacknowledged events stay."""
        if not self._tasks:
            return
        logger.info("dispatcher draining in_flight=%d", len(self._tasks))
        _, still_running = await asyncio.wait(
            set(self._tasks), timeout=self.settings.shutdown_grace_seconds
        )
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running)
            logger.warning("dispatcher released unfinished deliveries count=%d", len(still_running))

    def _age_s(self, event: OutboxEvent) -> float:
        return self.wall_clock() - event.created_ms / 1000

    def _expired(self, event: OutboxEvent) -> bool:
        return self._age_s(event) > self.settings.max_event_age_seconds

    def _read_block_ms(self) -> int:
        """Block for at most half the Redis socket timeout, so an idle read never times out."""
        share_ms = self.settings.redis_timeout_seconds * READ_BLOCK_SHARE_OF_TIMEOUT * 1000
        return min(READ_BLOCK_MS, int(share_ms))

    def _claim_idle_ms(self) -> int:
        return int(self.settings.claim_idle_seconds * 1000)

    @staticmethod
    def _key(event: OutboxEvent) -> tuple[int, str]:
        return (event.shard, event.entry_id)

    @staticmethod
    async def _wait(flag: asyncio.Event, timeout_s: float) -> bool:
        """Wait until `flag` is set or `timeout_s` passes; return whether it was set."""
        try:
            await asyncio.wait_for(flag.wait(), timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    def _log_retry(
        self,
        event: OutboxEvent,
        event_id: str,
        attempt: int,
        outcome: DeliveryOutcome,
        delay_s: float,
    ) -> None:
        """Log a retry with the event's age, since the maximum age ends the retries."""
        held_back = self._retry_log.allow()
        if held_back is None:
            return
        age_s = self._age_s(event)
        logger.warning(
            "delivery failed, will retry event_id=%s attempt=%d status=%s retry_in_s=%.2f "
            "age_s=%.0f max_age_s=%.0f error=%s similar_held_back=%d",
            event_id,
            attempt,
            outcome.status,
            delay_s,
            age_s,
            self.settings.max_event_age_seconds,
            outcome.error,
            held_back,
        )

    def _log_store_error(self, action: str, exc: StoreError) -> None:
        held_back = self._store_log.allow()
        if held_back is not None:
            logger.warning("%s failed error=%s similar_held_back=%d", action, exc, held_back)

    def _stats_fields(self) -> str:
        return " ".join(f"{name}={value}" for name, value in self.stats.as_dict().items())


def _day_of(event: OutboxEvent) -> DayKey:
    return (event.record.account_id, event.record.date)
