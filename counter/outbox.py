"""The outbox streams on Redis: reading, claiming, acknowledging and dead-lettering events.

Each shard has one stream, read by the consumer group `dispatchers`. An event is deleted
only after the receiver responded with 2xx, after it moved to the shard's dead-letter
stream, or, in `latest` mode, once a higher total of its day has replaced it.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from counter import keys
from counter.contract import OutboxRecord, build_event
from counter.errors import StoreError
from counter.scripts import register
from counter.store import translate_errors

logger = logging.getLogger(__name__)

REPLAY_BATCH = 500
# Lua's unpack() fails past about 8,000 values, so acknowledgements go in chunks.
ACK_CHUNK_IDS = 1000
MALFORMED_ERROR_PREFIX = "malformed outbox entry"


@dataclass(frozen=True)
class OutboxEvent:
    """One outbox entry as read by a dispatcher."""

    shard: int
    entry_id: str
    record: OutboxRecord

    @property
    def created_ms(self) -> int:
        """Return when Redis appended the entry, from the millisecond part of its id."""
        return int(self.entry_id.split("-", 1)[0])


@dataclass(frozen=True)
class ShardStatus:
    shard: int
    backlog: int
    pending: int
    oldest_age_s: float | None
    dead_letters: int


class Outbox:
    """Stream operations of one consumer in the `dispatchers` group."""

    def __init__(self, redis: Redis, shard_count: int, consumer: str) -> None:
        self.redis = redis
        self.shard_count = shard_count
        self.consumer = consumer
        self._claim_cursors = dict.fromkeys(range(shard_count), "0-0")
        self._shard_of_stream = {keys.outbox_key(shard): shard for shard in range(shard_count)}
        self._ack_script = register(redis, "ack_events")
        self._dead_letter_script = register(redis, "dead_letter")
        self._replay_script = register(redis, "replay_dead_letters")
        self._forget_script = register(redis, "forget_consumer")

    async def ensure_groups(self) -> None:
        """Create the consumer group on every shard stream, and the stream if needed."""
        async with translate_errors("creating consumer groups"):
            for shard in range(self.shard_count):
                try:
                    await self.redis.xgroup_create(
                        keys.outbox_key(shard), keys.CONSUMER_GROUP, id="0", mkstream=True
                    )
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

    async def read_new(self, count_per_shard: int, block_ms: int) -> list[OutboxEvent]:
        """Read events never delivered to any consumer, blocking up to `block_ms`.

        NOTE: one XREADGROUP spans every shard's stream, which Redis Cluster rejects
        because the streams live in different slots. Reading per shard would lift that.
        """
        streams: dict[Any, Any] = {keys.outbox_key(shard): ">" for shard in range(self.shard_count)}
        async with translate_errors("reading the outbox"):
            try:
                replies: Any = await self.redis.xreadgroup(
                    keys.CONSUMER_GROUP, self.consumer, streams, count_per_shard, block_ms
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                logger.warning("outbox consumer group missing; recreating it")
                await self.ensure_groups()
                return []
        entries = [
            (stream, entry_id, fields)
            for stream, stream_entries in replies or []
            for entry_id, fields in stream_entries
            if fields
        ]
        return await self._parse(entries)

    async def claim_stale(self, min_idle_ms: int, count_per_shard: int) -> list[OutboxEvent]:
        """Take over events that another consumer read but left unacknowledged too long."""
        claimed: list[tuple[str, str, dict[str, str]]] = []
        async with translate_errors("claiming stale outbox events"):
            for shard in range(self.shard_count):
                stream = keys.outbox_key(shard)
                reply = await self.redis.xautoclaim(
                    stream,
                    keys.CONSUMER_GROUP,
                    self.consumer,
                    min_idle_ms,
                    start_id=self._claim_cursors[shard],
                    count=count_per_shard,
                )
                self._claim_cursors[shard] = reply[0]
                claimed.extend(
                    (stream, entry_id, fields) for entry_id, fields in reply[1] if fields
                )
        return await self._parse(claimed)

    async def keep_claimed(self, events: Iterable[OutboxEvent]) -> None:
        """Reset the idle time of events still being delivered, so no one claims them."""
        async with (
            translate_errors("refreshing in-flight outbox events"),
            self.redis.pipeline(transaction=False) as pipe,
        ):
            for shard, entry_ids in _by_shard(events).items():
                pipe.xclaim(
                    keys.outbox_key(shard),
                    keys.CONSUMER_GROUP,
                    self.consumer,
                    0,
                    list[Any](entry_ids),
                    justid=True,
                )
            await pipe.execute()

    async def ack(self, events: Iterable[OutboxEvent]) -> None:
        """Acknowledge and delete delivered or superseded events."""
        async with translate_errors("acknowledging outbox events"):
            for shard, entry_ids in _by_shard(events).items():
                for start in range(0, len(entry_ids), ACK_CHUNK_IDS):
                    chunk = entry_ids[start : start + ACK_CHUNK_IDS]
                    await self._ack_script(
                        keys=[keys.outbox_key(shard)], args=[keys.CONSUMER_GROUP, *chunk]
                    )

    async def forget_consumer(self) -> int:
        """Leave the group on every shard where this consumer has no pending events.

        Returns the number of shards where it still has pending events and stays listed.
        """
        still_listed = 0
        async with translate_errors("removing the consumer from the group"):
            for shard in range(self.shard_count):
                removed = await self._forget_script(
                    keys=[keys.outbox_key(shard)], args=[keys.CONSUMER_GROUP, self.consumer]
                )
                still_listed += 0 if removed else 1
        return still_listed

    async def dead_letter(
        self, event: OutboxEvent, last_status: int | None, last_error: str, attempts: int
    ) -> bool:
        """Move `event` to its shard's dead-letter stream; False if it was already gone."""
        return await self._move_to_dead_letters(
            event.shard, event.entry_id, last_status, last_error, attempts
        )

    async def _move_to_dead_letters(
        self, shard: int, entry_id: str, last_status: int | None, last_error: str, attempts: int
    ) -> bool:
        async with translate_errors("dead-lettering an outbox event"):
            moved = await self._dead_letter_script(
                keys=[keys.outbox_key(shard), keys.dead_letter_key(shard)],
                args=[
                    keys.CONSUMER_GROUP,
                    entry_id,
                    "" if last_status is None else last_status,
                    last_error,
                    attempts,
                    int(time.time() * 1000),
                ],
            )
        return bool(moved)

    async def replay_dead_letters(self, limit: int | None) -> int:
        """Move up to `limit` dead letters (all when None) back to the outbox.

        Shards are replayed one after another, each oldest first. Malformed outbox
        entries that the dispatcher dead-lettered stay behind.
        """
        moved = 0
        async with translate_errors("replaying dead letters"):
            for shard in range(self.shard_count):
                cursor = "-"
                while limit is None or moved < limit:
                    batch = REPLAY_BATCH if limit is None else min(REPLAY_BATCH, limit - moved)
                    count, cursor, examined = await self._replay_script(
                        keys=[keys.dead_letter_key(shard), keys.outbox_key(shard)],
                        args=[batch, cursor, MALFORMED_ERROR_PREFIX],
                    )
                    moved += int(count)
                    if int(examined) < batch:
                        break
        return moved

    async def status(self, now_ms: int) -> list[ShardStatus]:
        """Return backlog, pending count, oldest event age and dead letters of each shard."""
        async with (
            translate_errors("reading outbox status"),
            self.redis.pipeline(transaction=False) as pipe,
        ):
            for shard in range(self.shard_count):
                stream = keys.outbox_key(shard)
                pipe.xlen(stream)
                pipe.xpending(stream, keys.CONSUMER_GROUP)
                pipe.xrange(stream, count=1)
                pipe.xlen(keys.dead_letter_key(shard))
            replies = await pipe.execute(raise_on_error=False)
        _raise_first_error(replies)
        return [
            _shard_status(shard, replies[4 * shard : 4 * shard + 4], now_ms)
            for shard in range(self.shard_count)
        ]

    async def _parse(self, entries: list[tuple[str, str, dict[str, str]]]) -> list[OutboxEvent]:
        """Turn stream entries into events, and dead-letter any that cannot become one.

        A failed move leaves that entry pending, to be claimed and tried again later, and
        never costs the valid events of the batch.
        """
        events: list[OutboxEvent] = []
        for stream, entry_id, fields in entries:
            shard = self._shard_of_stream[stream]
            try:
                record = OutboxRecord.from_stream_fields(fields)
                build_event(record)  # fails on a value the contract cannot carry
            except (KeyError, ValueError, OverflowError, OSError) as exc:
                await self._set_aside(shard, entry_id, f"{type(exc).__name__}: {exc}")
                continue
            events.append(OutboxEvent(shard, entry_id, record))
        return events

    async def _set_aside(self, shard: int, entry_id: str, reason: str) -> None:
        error = f"{MALFORMED_ERROR_PREFIX}: {reason}"
        logger.error("outbox entry malformed shard=%d entry_id=%s error=%s", shard, entry_id, error)
        try:
            await self._move_to_dead_letters(shard, entry_id, None, error, 0)
        except StoreError as exc:
            logger.warning(
                "dead-lettering a malformed entry failed shard=%d entry_id=%s error=%s",
                shard,
                entry_id,
                exc,
            )


def total_status(shards: Sequence[ShardStatus]) -> ShardStatus:
    """Sum shard statuses into one, with shard -1 and the oldest age of any shard."""
    ages = [shard.oldest_age_s for shard in shards if shard.oldest_age_s is not None]
    return ShardStatus(
        shard=-1,
        backlog=sum(shard.backlog for shard in shards),
        pending=sum(shard.pending for shard in shards),
        oldest_age_s=max(ages, default=None),
        dead_letters=sum(shard.dead_letters for shard in shards),
    )


def _by_shard(events: Iterable[OutboxEvent]) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = defaultdict(list)
    for event in events:
        grouped[event.shard].append(event.entry_id)
    return grouped


def _raise_first_error(replies: Sequence[object]) -> None:
    """Raise a pipeline's first error instead of reading it as an empty outbox."""
    for reply in replies:
        if isinstance(reply, ResponseError):
            if "NOGROUP" in str(reply):
                continue  # no consumer group yet: nothing is pending
            raise StoreError(f"reading outbox status failed: {reply}")
        if isinstance(reply, Exception):
            raise StoreError(f"reading outbox status failed: {reply}")


def _shard_status(shard: int, replies: Sequence[object], now_ms: int) -> ShardStatus:
    backlog, pending, first, dead = replies
    pending_count = pending["pending"] if isinstance(pending, dict) else 0
    oldest_age_s = None
    if isinstance(first, list) and first:
        oldest_ms = int(first[0][0].split("-", 1)[0])
        oldest_age_s = max(now_ms - oldest_ms, 0) / 1000
    return ShardStatus(
        shard=shard,
        backlog=backlog if isinstance(backlog, int) else 0,
        pending=int(pending_count),
        oldest_age_s=oldest_age_s,
        dead_letters=dead if isinstance(dead, int) else 0,
    )
