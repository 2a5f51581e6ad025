"""The aiohttp app of the mock external service, which receives daily-total events.

Only `POST /daily-totals` is subject to faults. The endpoints that read or change the
log, the counters and the faults (`/daily-totals` GET and DELETE, `/stats`, `/faults`,
`/healthz`) always respond normally.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from aiohttp import web
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from mock_external.faults import Faults, InvalidFaultsError, decide_fault
from mock_external.recorder import EventLog, InvalidEventError
from mock_external.responses import json_response, problem_response

logger = logging.getLogger(__name__)

EVENTS_PATH = "/daily-totals"

# Status of the response object for a dropped connection. The client never receives it, but
# aiohttp's access log records it.
DROPPED_CONNECTION_STATUS = 503


@dataclass
class MockState:
    """State shared by the handlers of one app. PUT /faults replaces `faults`."""

    faults: Faults
    events: EventLog
    rng: random.Random
    webhook: Webhook | None


STATE_KEY = web.AppKey("state", MockState)


def create_app(
    secret: str | None, faults: Faults, rng: random.Random | None = None
) -> web.Application:
    """Build the mock app with an empty event log.

    secret: a Standard Webhooks secret, "whsec_" followed by base64. If None, event POSTs
        are accepted without a signature.
    rng: the source of the failure_rate draws. The default is an unseeded random.Random.

    Raises ValueError if the secret is not base64 or decodes to no bytes.
    """
    state = MockState(
        faults=faults,
        events=EventLog(),
        rng=rng if rng is not None else random.Random(),
        webhook=_webhook_for(secret),
    )
    app = web.Application()
    app[STATE_KEY] = state
    app.add_routes(
        [
            web.post(EVENTS_PATH, receive_event),
            web.get(EVENTS_PATH, list_events),
            web.delete(EVENTS_PATH, clear_events),
            web.get("/stats", get_stats),
            web.get("/faults", get_faults),
            web.put("/faults", put_faults),
            web.get("/healthz", get_health),
        ]
    )
    app.on_cleanup.append(_log_final_stats)
    return app


def _webhook_for(secret: str | None) -> Webhook | None:
    if secret is None:
        return None
    try:
        return Webhook(secret)
    except (binascii.Error, EmptyWebhookSecretError) as exc:
        # The message leaves out the secret so that it never reaches a log.
        raise ValueError(
            "invalid webhook secret: expected whsec_ followed by non-empty base64"
        ) from exc


async def receive_event(request: web.Request) -> web.Response:
    """Record one event POST after applying the faults and checking the signature.

    The order is: down, reading the body, latency, signature (401), injected status,
    JSON check (400), record.
    """
    state = request.app[STATE_KEY]
    webhook_id = request.headers.get("webhook-id", "-")
    outcome = decide_fault(state.faults, state.rng)

    if outcome.close_connection:
        state.events.count_rejected()
        logger.info("injected fault webhook_id=%s fault=down", webhook_id)
        return _close_connection(request)

    # Read first, so a client that gives up during the delay does not fail the read.
    body = await request.read()
    if outcome.delay_ms > 0:
        logger.info("injected fault webhook_id=%s delay_ms=%d", webhook_id, outcome.delay_ms)
        await asyncio.sleep(outcome.delay_ms / 1000)

    signature_error = _signature_error(state.webhook, body, request.headers)
    if signature_error is not None:
        state.events.count_rejected()
        logger.info(
            "rejected event webhook_id=%s status=401 reason=%r", webhook_id, signature_error
        )
        return problem_response(401, f"webhook signature verification failed: {signature_error}")

    if outcome.status is not None:
        state.events.count_rejected()
        return _injected_status_response(outcome.status, outcome.retry_after_s, webhook_id)

    try:
        event = _parse_json_object(body)
        is_new = state.events.record(event)
    except InvalidEventError as exc:
        logger.info("invalid event webhook_id=%s status=400 reason=%r", webhook_id, str(exc))
        return problem_response(400, str(exc))

    logger.debug("recorded event event_id=%s duplicate=%s", event["event_id"], not is_new)
    return json_response({"status": "recorded" if is_new else "duplicate"})


def _close_connection(request: web.Request) -> web.Response:
    if request.transport is not None:
        request.transport.close()

    # aiohttp needs a response object. Writing it fails on the closed transport, which
    # aiohttp treats as a client disconnect, so nothing reaches the client.
    return web.Response(status=DROPPED_CONNECTION_STATUS)


def _signature_error(
    webhook: Webhook | None, body: bytes, headers: Mapping[str, str]
) -> str | None:
    """Return why the Standard Webhooks signature is invalid, or None if it is valid or unchecked.

    standardwebhooks (1.3) checks the webhook-id, webhook-timestamp and webhook-signature
    headers, and rejects a timestamp more than 5 minutes away from now.
    """
    if webhook is None:
        return None
    try:
        webhook.verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError as exc:
        return str(exc)
    return None


def _injected_status_response(
    status: int, retry_after_s: int | None, webhook_id: str
) -> web.Response:
    headers = {}
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)

    logger.info(
        "injected fault webhook_id=%s status=%d retry_after_s=%s", webhook_id, status, retry_after_s
    )
    detail = f"injected fault: this mock responds to event POSTs with {status}"
    return problem_response(status, detail, headers)


def _parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError(f"invalid request body: expected JSON ({exc})") from exc

    if not isinstance(value, dict):
        raise InvalidEventError(
            f"invalid request body: expected a JSON object, got {type(value).__name__}"
        )
    return value


async def list_events(request: web.Request) -> web.Response:
    """Return the recorded events, oldest first, filtered by account_id and date if given."""
    state = request.app[STATE_KEY]
    account_id = request.query.get("account_id") or None
    date = request.query.get("date") or None
    return json_response(state.events.events(account_id=account_id, date=date))


async def clear_events(request: web.Request) -> web.Response:
    request.app[STATE_KEY].events.clear()
    logger.info("cleared the event log and counters")
    return web.Response(status=204)


async def get_stats(request: web.Request) -> web.Response:
    return json_response(asdict(request.app[STATE_KEY].events.stats()))


async def get_faults(request: web.Request) -> web.Response:
    return json_response(request.app[STATE_KEY].faults.to_dict())


async def put_faults(request: web.Request) -> web.Response:
    """Replace the whole fault configuration. Fields missing from the body take their defaults."""
    state = request.app[STATE_KEY]
    try:
        values = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return _rejected_faults_response(400, f"invalid request body: expected JSON ({exc})")

    if not isinstance(values, dict):
        detail = f"invalid fault settings: expected a JSON object, got {type(values).__name__}"
        return _rejected_faults_response(422, detail)

    try:
        state.faults = Faults.from_mapping(values)
    except InvalidFaultsError as exc:
        return _rejected_faults_response(422, str(exc))

    logger.info("replaced faults %s", format_fields(state.faults.to_dict()))
    return json_response(state.faults.to_dict())


def _rejected_faults_response(status: int, detail: str) -> web.Response:
    logger.info("rejected faults status=%d reason=%r", status, detail)
    return problem_response(status, detail)


async def get_health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _log_final_stats(app: web.Application) -> None:
    stats = app[STATE_KEY].events.stats()
    logger.info("final counters %s", format_fields(asdict(stats)))


def format_fields(values: Mapping[str, Any]) -> str:
    """Format values as space-separated key=value log fields."""
    return " ".join(f"{key}={value}" for key, value in values.items())
