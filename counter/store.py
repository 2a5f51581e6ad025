"""Counting and hourly queries on Redis. Every Redis error leaves here as StoreError."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from counter import keys
from counter.buckets import counting_day, days_overlapping, epoch_us, hour_bucket
from counter.errors import IdReused, ShardCountMismatch, StoreError, StoreUnavailable
from counter.messages import Message
from counter.scripts import register

logger = logging.getLogger(__name__)


class CountStatus(StrEnum):
    COUNTED = "counted"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class CountResult:
    status: CountStatus
    hour: datetime
    day: date
    day_total: int


@dataclass(frozen=True)
class HourCount:
    hour: datetime
    count: int


@asynccontextmanager
async def translate_errors(action: str) -> AsyncIterator[None]:
    """Re-raise Redis and socket errors as StoreError, naming the action that failed.

    Connection failures and timeouts become StoreUnavailable, which a client may retry.
    Any other Redis error (a script error or a rejected argument) stays a StoreError.
    """
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"{action} failed: {exc}") from exc
    except RedisError as exc:
        raise StoreError(f"{action} failed: {exc}") from exc


class Store:
    """The counting side of Redis: one script call per message, reads for /counts."""

    def __init__(self, redis: Redis, shard_count: int, dedupe_ttl_seconds: int) -> None:
        self.redis = redis
        self.shard_count = shard_count
        self.dedupe_ttl_seconds = dedupe_ttl_seconds
        self._count_script = register(redis, "count_message")

    async def check_shard_count(self, record: bool = True) -> None:
        """Raise ShardCountMismatch if the data has another shard count.

        With `record`, an empty database gets this shard count. Read-only callers pass
        False, so that inspecting a wrong database never initialises it.
        """
        async with translate_errors("reading the shard count"):
            if record:
                await self.redis.set(keys.SHARD_COUNT_KEY, self.shard_count, nx=True)
            value = await self.redis.get(keys.SHARD_COUNT_KEY)
        if value is None and not record:
            return
        stored = str(value)
        if not stored.isdigit() or int(stored) != self.shard_count:
            raise ShardCountMismatch(
                f"the data in Redis was written with {stored} shards but COUNTER_SHARD_COUNT is "
                f"{self.shard_count}; set COUNTER_SHARD_COUNT={stored} or use an empty database"
            )

    async def ensure_scripts(self) -> None:
        """Load the count script unless Redis already has it, for example after a restart."""
        async with translate_errors("loading the count script"):
            exists = await self.redis.script_exists(self._count_script.sha)
            if not exists[0]:
                await self.redis.script_load(self._count_script.script)

    async def count(self, message: Message, now: datetime) -> CountResult:
        """Count `message` once. Raises IdReused when its id was counted with another time."""
        hour = hour_bucket(message.created_at)
        day = counting_day(message.created_at)
        shard = keys.shard_of(message.account_id, self.shard_count)
        script_keys = [
            keys.seen_key(shard, message.account_id, message.message_id),
            keys.hours_key(shard, message.account_id, hour.date()),
            keys.total_key(shard, message.account_id, day),
            keys.outbox_key(shard),
        ]
        script_args: list[str | int] = [
            epoch_us(message.created_at),
            keys.hour_field(hour.hour),
            self.dedupe_ttl_seconds,
            message.account_id,
            day.isoformat(),
            message.message_id,
            epoch_us(now) // 1000,
        ]
        async with translate_errors("counting a message"):
            reply = await self._count_script(keys=script_keys, args=script_args)

        status, day_total = reply[0], int(reply[1])
        if status == "reused":
            raise IdReused(
                f"message_id {message.message_id!r} was already counted for account "
                f"{message.account_id!r} with another created_at"
            )
        return CountResult(CountStatus(status), hour, day, day_total)

    async def hourly_counts(
        self, account_id: str, start: datetime, end: datetime
    ) -> list[HourCount]:
        """Return the non-zero hourly counts of the hours overlapping [start, end), ascending."""
        shard = keys.shard_of(account_id, self.shard_count)
        days = list(days_overlapping(start, end))
        if not days:
            return []
        first_hour = hour_bucket(start)
        async with (
            translate_errors("reading hourly counts"),
            self.redis.pipeline(transaction=False) as pipe,
        ):
            for day in days:
                pipe.hgetall(keys.hours_key(shard, account_id, day))
            replies = await pipe.execute()

        counts: list[HourCount] = []
        for day, fields in zip(days, replies, strict=True):
            for field in sorted(fields):
                hour = datetime(day.year, day.month, day.day, int(field), tzinfo=first_hour.tzinfo)
                if first_hour <= hour < end:
                    counts.append(HourCount(hour, int(fields[field])))
        return counts
