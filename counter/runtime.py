"""The resources one service process holds: Redis, the store, the outbox and the dispatcher."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import BlockingConnectionPool, Redis
from standardwebhooks.webhooks import Webhook

from counter.dispatcher import Dispatcher
from counter.errors import ConfigError
from counter.outbox import Outbox
from counter.sender import Sender
from counter.settings import Settings
from counter.signatures import load_secret
from counter.store import Store

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0


@dataclass
class Runtime:
    settings: Settings
    store: Store
    outbox: Outbox
    webhook_verifier: Webhook | None
    dispatcher: Dispatcher | None


def consumer_name() -> str:
    """Name this process in the consumer group; unique even when a PID is reused."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def connect(settings: Settings) -> Redis:
    """Open a client whose pool waits for a free connection instead of failing at once.

    Requests beyond `redis_max_connections` queue for up to `redis_timeout_seconds`, so a
    short burst of webhooks is slowed down. A request still waiting after that gets 503.
    """
    if settings.redis_url is None:
        raise ConfigError("COUNTER_REDIS_URL is not set and no embedded server was started")
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_seconds,
        decode_responses=True,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
    )
    return Redis.from_pool(pool)


@asynccontextmanager
async def open_runtime(
    settings: Settings, with_dispatcher: bool, with_http: bool = True
) -> AsyncIterator[Runtime]:
    """Connect to Redis, check its layout, and run the dispatcher while the block runs."""
    # The dispatcher has a client of its own, so its blocking reads never take
    # connections that webhook requests are waiting for.
    async with AsyncExitStack() as stack:
        redis = connect(settings)
        stack.push_async_callback(redis.aclose)
        outbox_redis = connect(settings)
        stack.push_async_callback(outbox_redis.aclose)
        store = Store(redis, settings.shard_count, settings.dedupe_ttl_seconds)
        await store.check_shard_count()
        await store.ensure_scripts()
        outbox = Outbox(outbox_redis, settings.shard_count, consumer_name())
        await outbox.ensure_groups()
        verifier = _webhook_verifier(settings) if with_http else None
        dispatcher = await stack.enter_async_context(
            _dispatching(settings, outbox, with_dispatcher)
        )
        yield Runtime(settings, store, outbox, verifier, dispatcher)


def _webhook_verifier(settings: Settings) -> Webhook | None:
    if settings.webhook_secret is None:
        logger.warning(
            "COUNTER_WEBHOOK_SECRET is not set: POST /webhooks/messages accepts unsigned requests"
        )
        return None
    return load_secret(settings.webhook_secret, "COUNTER_WEBHOOK_SECRET")


@asynccontextmanager
async def _dispatching(
    settings: Settings, outbox: Outbox, enabled: bool
) -> AsyncIterator[Dispatcher | None]:
    if not enabled:
        yield None
        return
    signer = None
    if settings.daily_total_secret is not None:
        signer = load_secret(settings.daily_total_secret, "COUNTER_DAILY_TOTAL_SECRET")
    sender = Sender(
        settings.daily_total_url,
        settings.delivery_timeout_seconds,
        signer,
        settings.delivery_concurrency,
    )
    await sender.start()
    dispatcher = Dispatcher(outbox, sender, settings)
    task = asyncio.create_task(dispatcher.run())
    try:
        yield dispatcher
    finally:
        dispatcher.stop()
        # A crash was logged when it happened; shutting down must not raise it again.
        await asyncio.gather(task, return_exceptions=True)
        await sender.close()
