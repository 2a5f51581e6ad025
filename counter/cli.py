"""The `counter` command: serve HTTP, run the dispatcher, and inspect the outbox."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import uvicorn

from counter.embedded import LOOPBACK, EmbeddedValkey
from counter.errors import (
    ConfigError,
    CounterError,
    DispatcherCrashed,
    ShardCountMismatch,
    StoreError,
)
from counter.logs import configure_logging
from counter.outbox import Outbox, ShardStatus, total_status
from counter.runtime import connect, consumer_name, open_runtime
from counter.settings import DeliveryMode, Settings
from counter.store import Store

logger = logging.getLogger(__name__)

# CLI options that override a COUNTER_* variable: option dest -> variable.
OPTION_VARIABLES = {
    "host": "COUNTER_HOST",
    "port": "COUNTER_PORT",
    "workers": "COUNTER_WORKERS",
    "redis_url": "COUNTER_REDIS_URL",
    "data_dir": "COUNTER_DATA_DIR",
    "daily_total_url": "COUNTER_DAILY_TOTAL_URL",
    "delivery_mode": "COUNTER_DELIVERY_MODE",
    "log_level": "COUNTER_LOG_LEVEL",
}


class Terminated(Exception):
    """SIGTERM arrived. Raised so that `finally` blocks, which stop Valkey, still run."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the command parser. Options left out fall back to the COUNTER_* variables."""
    parser = argparse.ArgumentParser(
        prog="counter", description="Message Counter: counts chat-message webhooks."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="run the HTTP service (and, by default, the dispatcher)"
    )
    serve.add_argument("--host", help="address to bind (env COUNTER_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (env COUNTER_PORT, default 8000)")
    serve.add_argument(
        "--workers", type=int, help="worker processes (env COUNTER_WORKERS, default 1)"
    )
    serve.add_argument(
        "--no-dispatcher",
        action="store_true",
        help="serve HTTP only; run `counter dispatch` elsewhere",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log one line per request (off by default, because it costs throughput)",
    )
    _add_redis_options(serve, starts_valkey=True)
    _add_delivery_options(serve)

    dispatch = commands.add_parser(
        "dispatch", help="run only the dispatcher that delivers daily totals"
    )
    _add_redis_options(dispatch)
    _add_delivery_options(dispatch)

    outbox = commands.add_parser("outbox", help="inspect or repair the outbox")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", required=True)
    status = outbox_commands.add_parser(
        "status", help="print backlog, pending, oldest age and dead letters per shard"
    )
    _add_redis_options(status)
    replay = outbox_commands.add_parser(
        "replay", help="move dead letters back to the outbox for delivery"
    )
    replay.add_argument(
        "--limit", type=positive_int, default=None, help="move at most this many (default: all)"
    )
    _add_redis_options(replay)
    return parser


def _add_redis_options(parser: argparse.ArgumentParser, starts_valkey: bool = False) -> None:
    if starts_valkey:
        parser.add_argument(
            "--redis-url", help="Redis URL (env COUNTER_REDIS_URL; unset: start an embedded Valkey)"
        )
        parser.add_argument(
            "--data-dir",
            help="embedded Valkey data folder (env COUNTER_DATA_DIR, default ./.data)",
        )
    else:
        parser.add_argument(
            "--redis-url",
            help="Redis URL (env COUNTER_REDIS_URL; unset: the embedded Valkey of a running "
            "`counter serve` on COUNTER_EMBEDDED_PORT)",
        )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level (env COUNTER_LOG_LEVEL, default INFO)",
    )


def _add_delivery_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--daily-total-url", help="where daily totals are POSTed (env COUNTER_DAILY_TOTAL_URL)"
    )
    parser.add_argument(
        "--delivery-mode",
        choices=[mode.value for mode in DeliveryMode],
        help="every or latest (env COUNTER_DELIVERY_MODE)",
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    _export_options(args)
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        _run(args, settings)
    except CounterError as exc:
        print(f"counter: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    except (KeyboardInterrupt, Terminated):
        pass


def _export_options(args: argparse.Namespace) -> None:
    """Copy CLI options into the environment, so uvicorn's worker processes see them too."""
    for dest, variable in OPTION_VARIABLES.items():
        value = getattr(args, dest, None)
        if value is not None:
            os.environ[variable] = str(value)
    if getattr(args, "no_dispatcher", False):
        os.environ["COUNTER_DISPATCHER_ENABLED"] = "false"


def _run(args: argparse.Namespace, settings: Settings) -> None:
    try:
        if args.command == "serve":
            serve(settings, args.access_log)
        elif args.command == "dispatch":
            asyncio.run(dispatch(_with_running_redis(settings)))
        elif args.outbox_command == "status":
            asyncio.run(print_status(_with_running_redis(settings)))
        else:
            asyncio.run(replay(_with_running_redis(settings), args.limit))
    except StoreError as exc:
        hint = _redis_hint(args.command, settings, exc)
        if hint is None:
            raise
        raise type(exc)(f"{str(exc).rstrip('.')}. {hint}") from exc


def _redis_hint(command: str, settings: Settings, exc: StoreError) -> str | None:
    """Say what to check when Redis fails before the work starts; None when it is clear."""
    if isinstance(exc, ShardCountMismatch):
        return None
    if settings.redis_url is not None:
        return "Check that COUNTER_REDIS_URL names a running Redis 7 or Valkey server"
    if command != "serve":
        return (
            f"No embedded Valkey answers on port {settings.embedded_port}: start "
            "`counter serve`, or set COUNTER_EMBEDDED_PORT (or COUNTER_REDIS_URL) to the "
            "server it uses"
        )
    return None


def serve(settings: Settings, access_log: bool) -> None:
    """Run uvicorn; start the embedded Valkey first, once, when no Redis URL is set."""
    # uvicorn re-raises the SIGTERM it handled once it has shut down. Without a handler
    # of our own, that would end the process before the embedded Valkey is stopped.
    signal.signal(signal.SIGTERM, _raise_terminated)
    with _redis_for_serving(settings):
        # Checked here, before uvicorn starts, so a problem is one line and not a
        # traceback from every worker's lifespan.
        asyncio.run(check_redis(Settings.from_env()))
        uvicorn.run(
            "counter.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            access_log=access_log,
            log_level=settings.log_level.lower(),
            # This deadline covers open HTTP requests only, so it is as long as one can
            # take. The dispatcher drains afterwards, in the lifespan shutdown.
            timeout_graceful_shutdown=math.ceil(
                settings.body_timeout_seconds + settings.redis_timeout_seconds
            ),
        )


@contextmanager
def _redis_for_serving(settings: Settings) -> Iterator[None]:
    if settings.redis_url is not None:
        yield
        return
    server = EmbeddedValkey(settings.data_dir, settings.embedded_port)
    try:
        os.environ["COUNTER_REDIS_URL"] = server.start()
        server.watch()
        yield
    finally:
        server.stop()


def _with_running_redis(settings: Settings) -> Settings:
    """Without a URL, use the embedded server that a running `counter serve` started."""
    if settings.redis_url is not None:
        return settings
    if settings.embedded_port == 0:
        raise ConfigError(
            "COUNTER_REDIS_URL is not set and COUNTER_EMBEDDED_PORT is 0, so the embedded "
            "Valkey's port is unknown; set COUNTER_REDIS_URL to the URL that `counter serve` logged"
        )
    return settings.with_changes(redis_url=f"redis://{LOOPBACK}:{settings.embedded_port}/0")


async def dispatch(settings: Settings) -> None:
    """Run only the dispatcher until SIGINT or SIGTERM."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    async with open_runtime(settings, with_dispatcher=True, with_http=False) as runtime:
        dispatcher = runtime.dispatcher
        if dispatcher is None:
            raise DispatcherCrashed("the dispatcher did not start")
        signal_wait = asyncio.create_task(stopped.wait())
        finished_wait = asyncio.create_task(dispatcher.finished.wait())
        await asyncio.wait({signal_wait, finished_wait}, return_when=asyncio.FIRST_COMPLETED)
        signal_wait.cancel()
        finished_wait.cancel()
        if dispatcher.error is not None:
            raise DispatcherCrashed(f"the dispatcher crashed: {dispatcher.error!r}")
        logger.info("signal received; stopping the dispatcher")


async def check_redis(settings: Settings, read_only: bool = False) -> None:
    """Raise a CounterError unless Redis responds and its data has this shard count."""
    redis = connect(settings)
    try:
        store = Store(redis, settings.shard_count, settings.dedupe_ttl_seconds)
        await store.check_shard_count(record=not read_only)
        if not read_only:
            await store.ensure_scripts()
    finally:
        await redis.aclose()


async def print_status(settings: Settings) -> None:
    await check_redis(settings, read_only=True)
    redis = connect(settings)
    try:
        outbox = Outbox(redis, settings.shard_count, consumer_name())
        shards = await outbox.status(int(time.time() * 1000))
    finally:
        await redis.aclose()
    print(format_status(shards))


def format_status(shards: Sequence[ShardStatus]) -> str:
    """Render one row per shard and a final row for all shards."""
    total = total_status(shards)
    rows = [_status_row("shard", "backlog", "pending", "oldest_age_s", "dead_letters")]
    rows += [_status_row(str(shard.shard), *_status_cells(shard)) for shard in shards]
    rows.append(_status_row("all", *_status_cells(total)))
    return "\n".join(rows)


def _status_cells(shard: ShardStatus) -> tuple[str, str, str, str]:
    age = "-" if shard.oldest_age_s is None else f"{shard.oldest_age_s:.1f}"
    return str(shard.backlog), str(shard.pending), age, str(shard.dead_letters)


def _status_row(*cells: str) -> str:
    return f"{cells[0]:>5} {cells[1]:>9} {cells[2]:>9} {cells[3]:>13} {cells[4]:>13}"


async def replay(settings: Settings, limit: int | None) -> None:
    await check_redis(settings)
    redis = connect(settings)
    try:
        moved = await Outbox(redis, settings.shard_count, consumer_name()).replay_dead_letters(
            limit
        )
    finally:
        await redis.aclose()
    print(f"moved {moved} dead letters back to the outbox")
