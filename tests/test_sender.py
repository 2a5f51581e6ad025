"""The Sender against the real mock receiver: connections, outcomes and classification."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from counter.retry import Verdict
from counter.sender import DeliveryOutcome, Sender
from tests.support.stack import mock_process, url_of

# 150 POSTs at once, each held 1 s by the mock. With fewer connections than POSTs, the
# rest would wait for a free one and pass the 1.8 s timeout.
CONCURRENT_POSTS = 150
LATENCY_MS = 1000
TIMEOUT_S = 1.8


def event_body(index: int) -> bytes:
    return orjson.dumps({"event_id": f"dt_{index:032x}", "account_id": "acc-sender"})


def test_sender_one_connection_per_post(tmp_path: Path) -> None:
    mock = mock_process(tmp_path, "--latency-ms", str(LATENCY_MS))
    mock.start()

    async def send_all() -> list[DeliveryOutcome]:
        sender = Sender(
            f"{url_of(mock)}/daily-totals", TIMEOUT_S, None, max_connections=CONCURRENT_POSTS
        )
        await sender.start()
        try:
            return await asyncio.gather(
                *(
                    sender.send(f"dt_{index:032x}", event_body(index))
                    for index in range(CONCURRENT_POSTS)
                )
            )
        finally:
            await sender.close()

    try:
        outcomes = asyncio.run(send_all())
    finally:
        mock.stop()

    assert [outcome.error for outcome in outcomes if outcome.verdict is not Verdict.DELIVERED] == []
    assert len(outcomes) == CONCURRENT_POSTS
