"""POSTs daily-total events to the external service over one keep-alive aiohttp session.

aiohttp and socket errors are translated here, once, into a DeliveryOutcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
from standardwebhooks.webhooks import Webhook

from counter.retry import Verdict, classify_status, parse_retry_after
from counter.signatures import signed_headers

MAX_ERROR_BODY_CHARS = 200
# Statuses whose Retry-After header says when to try again (RFC 9110, section 10.2.3).
RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class DeliveryOutcome:
    """Result of one POST: the verdict, the status if a response arrived, and the error."""

    verdict: Verdict
    status: int | None = None
    retry_after_s: float | None = None
    error: str = ""


def redact_url(url: str) -> str:
    """Drop the user info and query string, which may carry credentials, for logging."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class Sender:
    """Sends event bodies to one URL, signing them when a secret is configured."""

    def __init__(
        self, url: str, timeout_s: float, signer: Webhook | None, max_connections: int
    ) -> None:
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.signer = signer
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # One connection per concurrent POST. With fewer, a POST would wait for a free
        # connection, and that wait counts against its timeout.
        connector = aiohttp.TCPConnector(
            limit=self.max_connections, limit_per_host=self.max_connections
        )
        self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, event_id: str, body: bytes) -> DeliveryOutcome:
        """POST one event and classify the result. Network errors become an outcome."""
        if self._session is None:
            raise RuntimeError("Sender.start() must be awaited before send()")
        headers = {"content-type": "application/json"}
        if self.signer is not None:
            headers.update(signed_headers(self.signer, event_id, body, datetime.now(UTC)))
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                return await _outcome(response)
        except TimeoutError:
            return DeliveryOutcome(Verdict.RETRY, error="timed out")
        except aiohttp.InvalidURL as exc:
            return DeliveryOutcome(
                Verdict.PERMANENT, error=f"invalid URL {redact_url(self.url)}: {type(exc).__name__}"
            )
        except (aiohttp.ClientError, OSError) as exc:
            return DeliveryOutcome(Verdict.RETRY, error=f"{type(exc).__name__}: {exc}")


async def _outcome(response: aiohttp.ClientResponse) -> DeliveryOutcome:
    verdict = classify_status(response.status)
    if verdict is Verdict.DELIVERED:
        return DeliveryOutcome(verdict, response.status)
    retry_after_s = None
    if response.status in RETRY_AFTER_STATUSES:
        retry_after_s = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
    try:
        text = await response.text(errors="replace")
    except (TimeoutError, aiohttp.ClientError):
        text = ""
    error = f"HTTP {response.status}: {text[:MAX_ERROR_BODY_CHARS]}".strip()
    return DeliveryOutcome(verdict, response.status, retry_after_s, error)
