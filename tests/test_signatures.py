"""Standard Webhooks signatures, checked on incoming messages and sent on daily totals.

Requests are signed with the `standardwebhooks` package, as a real sender would sign them.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.client import Reply, request, wait_until
from tests.support.processes import ManagedProcess
from tests.support.stack import mock_process, service_process, start_valkey, url_of

WAIT_S = 20.0
DAY = "2025-09-18"
INVALID_SIGNATURE = "urn:message-counter:problem:invalid-signature"
UNSIGNED_WARNING = "COUNTER_WEBHOOK_SECRET is not set"
# standardwebhooks 1.3 rejects a webhook-timestamp more than 5 minutes from now.
OUT_OF_TOLERANCE = timedelta(minutes=10)

Headers = dict[str, str]


def new_secret() -> str:
    """Return a Standard Webhooks secret: whsec_ and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


INCOMING_SECRET = new_secret()
OUTGOING_SECRET = new_secret()


@dataclass
class SignedStack:
    """A service that checks incoming signatures and signs outgoing events, and its mock."""

    service: ManagedProcess
    service_url: str
    mock_url: str


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignedStack]:
    log_dir = tmp_path_factory.mktemp("signed")
    valkey = start_valkey(log_dir / "valkey")
    mock = mock_process(log_dir, "--secret", OUTGOING_SECRET)
    service = service_process(
        log_dir,
        valkey.url,
        f"{url_of(mock)}/daily-totals",
        env={
            "COUNTER_WEBHOOK_SECRET": INCOMING_SECRET,
            "COUNTER_DAILY_TOTAL_SECRET": OUTGOING_SECRET,
        },
        name="signed-service",
    )
    try:
        mock.start()
        service.start()
        yield SignedStack(service, url_of(service), url_of(mock))
    finally:
        service.stop()
        mock.stop()
        valkey.stop()


def message_body(account: str, message_id: str = "m-1") -> bytes:
    return orjson.dumps(
        {"message_id": message_id, "account_id": account, "created_at": f"{DAY}T10:15:00Z"}
    )


def signature_headers(secret: str, body: bytes, timestamp: datetime | None = None) -> Headers:
    """Sign the exact body bytes as a Standard Webhooks sender does."""
    when = timestamp or datetime.now(UTC)
    webhook_id = f"msg_{secrets.token_hex(8)}"
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, when, body),
    }


def post_webhook(service_url: str, body: bytes, headers: Headers) -> Reply:
    return request("POST", f"{service_url}/webhooks/messages", body=body, headers=headers)


def counted(service_url: str, account: str) -> list[Any]:
    reply = request(
        "GET",
        f"{service_url}/counts?account_id={account}&from={DAY}T00:00:00Z&to={DAY}T23:59:59Z",
    )
    assert reply.status == 200, reply.body
    counts: list[Any] = reply.json()
    return counts


def received_totals(mock_url: str, account: str) -> list[int]:
    events = request("GET", f"{mock_url}/daily-totals?account_id={account}").json()
    return sorted(event["total"] for event in events)


def metrics(service_url: str) -> dict[str, Any]:
    reply = request("GET", f"{service_url}/metrics")
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.json()
    return body


def tampered_body(body: bytes) -> tuple[bytes, Headers]:
    return body.replace(b'"m-1"', b'"m-2"'), signature_headers(INCOMING_SECRET, body)


def wrong_secret(body: bytes) -> tuple[bytes, Headers]:
    return body, signature_headers(new_secret(), body)


def stale_timestamp(body: bytes) -> tuple[bytes, Headers]:
    return body, signature_headers(INCOMING_SECRET, body, datetime.now(UTC) - OUT_OF_TOLERANCE)


def future_timestamp(body: bytes) -> tuple[bytes, Headers]:
    return body, signature_headers(INCOMING_SECRET, body, datetime.now(UTC) + OUT_OF_TOLERANCE)


def without(header: str) -> Callable[[bytes], tuple[bytes, Headers]]:
    def build(body: bytes) -> tuple[bytes, Headers]:
        headers = signature_headers(INCOMING_SECRET, body)
        del headers[header]
        return body, headers

    return build


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(tampered_body, id="tampered-body"),
        pytest.param(wrong_secret, id="wrong-secret"),
        pytest.param(stale_timestamp, id="stale-timestamp"),
        pytest.param(future_timestamp, id="future-timestamp"),
        pytest.param(without("webhook-id"), id="missing-webhook-id"),
        pytest.param(without("webhook-timestamp"), id="missing-webhook-timestamp"),
        pytest.param(without("webhook-signature"), id="missing-webhook-signature"),
    ],
)
def test_webhook_invalid_signature_is_rejected(
    signed: SignedStack, account: str, forge: Callable[[bytes], tuple[bytes, Headers]]
) -> None:
    body, headers = forge(message_body(account))

    reply = post_webhook(signed.service_url, body, headers)

    assert reply.status == 401, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["type"] == INVALID_SIGNATURE
    assert counted(signed.service_url, account) == []


def test_webhook_valid_signature_is_counted(signed: SignedStack, account: str) -> None:
    body = message_body(account)

    reply = post_webhook(signed.service_url, body, signature_headers(INCOMING_SECRET, body))

    assert reply.status == 202, reply.body
    assert [item["count_messages"] for item in counted(signed.service_url, account)] == [1]


def test_daily_total_signature_accepted_by_receiver(signed: SignedStack, account: str) -> None:
    body = message_body(account)
    reply = post_webhook(signed.service_url, body, signature_headers(INCOMING_SECRET, body))
    assert reply.status == 202, reply.body

    # The mock responds 401 to a bad signature, which the service treats as permanent, so
    # only a correctly signed event can reach the mock's log.
    wait_until(lambda: received_totals(signed.mock_url, account) == [1], WAIT_S)


def test_service_log_omits_secrets(signed: SignedStack, account: str) -> None:
    body = message_body(account)
    post_webhook(signed.service_url, body, signature_headers(INCOMING_SECRET, body))
    post_webhook(signed.service_url, *wrong_secret(body))
    wait_until(lambda: received_totals(signed.mock_url, account) == [1], WAIT_S)

    output = signed.service.output()

    assert "dispatcher started" in output
    assert UNSIGNED_WARNING not in output
    for secret in (INCOMING_SECRET, OUTGOING_SECRET):
        assert secret.removeprefix("whsec_") not in output


def test_unsigned_service_warns_once(service: ManagedProcess) -> None:
    warnings = [line for line in service.output().splitlines() if UNSIGNED_WARNING in line]

    assert len(warnings) == 1
    assert " WARNING " in warnings[0]


def test_daily_total_wrong_secret_is_dead_lettered(tmp_path: Path, account: str) -> None:
    valkey = start_valkey(tmp_path / "valkey")
    mock = mock_process(tmp_path, "--secret", OUTGOING_SECRET)
    service = service_process(
        tmp_path,
        valkey.url,
        f"{url_of(mock)}/daily-totals",
        env={"COUNTER_DAILY_TOTAL_SECRET": new_secret()},
    )
    try:
        mock.start()
        service.start()
        service_url = url_of(service)
        reply = post_webhook(
            service_url, message_body(account), {"content-type": "application/json"}
        )
        assert reply.status == 202, reply.body
        wait_until(lambda: metrics(service_url)["outbox"]["dead_letters"] == 1, WAIT_S)
        stats = metrics(service_url)
        received = request("GET", f"{url_of(mock)}/stats").json()
    finally:
        service.stop()
        mock.stop()
        valkey.stop()

    dead_lettered = [line for line in service.output().splitlines() if "dead-lettered" in line]
    assert stats["dispatcher"]["dead_lettered"] == 1
    assert stats["dispatcher"]["retried"] == 0
    assert stats["outbox"]["backlog"] == 0
    assert received["rejected"] == 1
    assert received["distinct"] == 0
    assert len(dead_lettered) == 1
    assert "status=401" in dead_lettered[0]
