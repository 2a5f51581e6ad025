"""The outbox streams against a real Valkey: chunked acks, malformed entries, replay, status."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from counter import keys
from counter.embedded import EmbeddedValkey
from counter.errors import StoreError
from counter.outbox import ACK_CHUNK_IDS, MALFORMED_ERROR_PREFIX, Outbox
from counter.runtime import connect
from counter.settings import Settings

SHARDS = 4
EVENT_FIELDS = {
    "account_id": "acc-1",
    "date": "2025-09-18",
    "total": "1",
    "message_id": "m-1",
    "computed_at": "1758190500000",
}


@pytest.fixture
def client(own_valkey: EmbeddedValkey) -> Iterator[redis.Redis]:
    sync_client = redis.Redis.from_url(own_valkey.url, decode_responses=True)
    yield sync_client
    sync_client.close()


def with_outbox(own_valkey: EmbeddedValkey, action):  # type: ignore[no-untyped-def]
    """Run `action(outbox)` on a fresh asyncio loop and return its result."""

    async def run():  # type: ignore[no-untyped-def]
        redis_client = connect(Settings(redis_url=own_valkey.url))
        try:
            outbox = Outbox(redis_client, SHARDS, "test-consumer")
            await outbox.ensure_groups()
            return await action(outbox)
        finally:
            await redis_client.aclose()

    return asyncio.run(run())


def test_ack_deletes_more_ids_than_lua_unpacks(
    own_valkey: EmbeddedValkey, client: redis.Redis
) -> None:
    count = 8 * ACK_CHUNK_IDS + 500
    with_outbox(own_valkey, lambda outbox: outbox.ensure_groups())
    pipe = client.pipeline(transaction=False)
    for _ in range(count):
        pipe.xadd(keys.outbox_key(0), EVENT_FIELDS)
    pipe.execute()

    async def read_and_ack(outbox: Outbox) -> int:
        events = []
        while len(events) < count:
            events += await outbox.read_new(count, block_ms=100)
        await outbox.ack(events)
        return len(events)

    acknowledged = with_outbox(own_valkey, read_and_ack)

    assert acknowledged == count
    assert client.xlen(keys.outbox_key(0)) == 0
    assert client.xpending(keys.outbox_key(0), keys.CONSUMER_GROUP)["pending"] == 0


def test_malformed_entry_goes_to_dead_letters(
    own_valkey: EmbeddedValkey, client: redis.Redis
) -> None:
    with_outbox(own_valkey, lambda outbox: outbox.ensure_groups())
    client.xadd(keys.outbox_key(1), {"account_id": "acc-1", "date": "2025-09-18"})
    good_id = client.xadd(keys.outbox_key(1), EVENT_FIELDS)

    events = with_outbox(own_valkey, lambda outbox: outbox.read_new(10, block_ms=100))

    assert [event.entry_id for event in events] == [good_id]
    [(_, dead_fields)] = client.xrange(keys.dead_letter_key(1))
    assert dead_fields["last_error"].startswith(MALFORMED_ERROR_PREFIX)
    assert dead_fields["account_id"] == "acc-1"
    assert client.xlen(keys.outbox_key(1)) == 1


def test_replay_skips_entries_that_are_not_events(
    own_valkey: EmbeddedValkey, client: redis.Redis
) -> None:
    with_outbox(own_valkey, lambda outbox: outbox.ensure_groups())
    client.xadd(keys.dead_letter_key(2), {"account_id": "acc-1", "last_error": "malformed"})
    for total in (1, 2):
        client.xadd(keys.dead_letter_key(2), {**EVENT_FIELDS, "total": str(total), "attempts": "3"})

    moved = with_outbox(own_valkey, lambda outbox: outbox.replay_dead_letters(None))

    assert moved == 2
    assert [fields["total"] for _, fields in client.xrange(keys.outbox_key(2))] == ["1", "2"]
    assert "attempts" not in client.xrange(keys.outbox_key(2))[0][1]
    assert client.xlen(keys.dead_letter_key(2)) == 1


def test_replay_keeps_unreadable_complete_entry(
    own_valkey: EmbeddedValkey, client: redis.Redis
) -> None:
    with_outbox(own_valkey, lambda outbox: outbox.ensure_groups())
    client.xadd(keys.outbox_key(3), {**EVENT_FIELDS, "total": "many"})
    with_outbox(own_valkey, lambda outbox: outbox.read_new(10, block_ms=100))

    moved = with_outbox(own_valkey, lambda outbox: outbox.replay_dead_letters(None))

    assert moved == 0
    assert client.xlen(keys.dead_letter_key(3)) == 1
    assert client.xlen(keys.outbox_key(3)) == 0


def test_replay_limit_moves_that_many(own_valkey: EmbeddedValkey, client: redis.Redis) -> None:
    with_outbox(own_valkey, lambda outbox: outbox.ensure_groups())
    for shard in range(SHARDS):
        client.xadd(keys.dead_letter_key(shard), EVENT_FIELDS)

    moved = with_outbox(own_valkey, lambda outbox: outbox.replay_dead_letters(3))

    assert moved == 3
    remaining = sum(client.xlen(keys.dead_letter_key(shard)) for shard in range(SHARDS))
    assert remaining == 1


def test_status_raises_on_wrong_key_type(own_valkey: EmbeddedValkey, client: redis.Redis) -> None:
    with_outbox(own_valkey, lambda outbox: outbox.ensure_groups())
    client.set(keys.dead_letter_key(3), "not a stream")

    with pytest.raises(StoreError, match="reading outbox status failed"):
        with_outbox(own_valkey, lambda outbox: outbox.status(0))
