"""Small HTTP clients for tests: a blocking one for single requests, an async one for load."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from tests.support.processes import DIRECT_OPENER

REQUEST_TIMEOUT_S = 30.0
JSON_HEADERS = {"content-type": "application/json"}


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)

    def json(self) -> Any:
        return orjson.loads(self.body)


def request(
    method: str,
    url: str,
    *,
    json: Any = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """Send one request and return the reply, whatever its status."""
    all_headers = dict(headers or {})
    if json is not None:
        body = orjson.dumps(json)
        all_headers.setdefault("content-type", "application/json")
    prepared = urllib.request.Request(url, data=body, headers=all_headers, method=method)
    try:
        with DIRECT_OPENER.open(prepared, timeout=REQUEST_TIMEOUT_S) as response:
            return Reply(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, dict(error.headers.items()), error.read())


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> None:
    """Poll `check` until it returns True; raise TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"condition not met within {timeout_s}s: {check.__doc__ or check}")


async def post_all(
    url: str,
    payloads: Iterable[Mapping[str, Any]],
    concurrency: int,
    retry_statuses: frozenset[int] = frozenset({503}),
    max_attempts: int = 200,
    retry_pause_s: float = 0.1,
    progress: list[int] | None = None,
) -> list[int]:
    """POST every payload as a webhook sender would: concurrently, retrying failures.

    A connection error or a status in `retry_statuses` is retried up to `max_attempts`
    times, because the sender cannot know whether the service counted the message.
    `progress[0]`, when given, counts finished payloads. Returns the final status of
    each payload, in input order.
    """
    items = list(payloads)
    statuses = [0] * len(items)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(items)):
        queue.put_nowait(index)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            statuses[index] = await _post_with_retries(
                session, url, items[index], retry_statuses, max_attempts, retry_pause_s
            )
            if progress is not None:
                progress[0] += 1

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trust_env=False
    ) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return statuses


async def _post_with_retries(
    session: aiohttp.ClientSession,
    url: str,
    payload: Mapping[str, Any],
    retry_statuses: frozenset[int],
    max_attempts: int,
    retry_pause_s: float,
) -> int:
    body = orjson.dumps(payload)
    for _ in range(max_attempts):
        try:
            async with session.post(url, data=body, headers=JSON_HEADERS) as response:
                await response.read()
                if response.status not in retry_statuses:
                    return response.status
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(retry_pause_s)
    raise TimeoutError(f"gave up posting {payload.get('message_id')!r} after {max_attempts} tries")
