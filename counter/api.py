"""HTTP endpoints. Each handler validates with the pure modules and calls the store."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response

from counter import signatures
from counter.buckets import format_utc
from counter.errors import IdReused, InvalidInput, InvalidSignature, StoreError
from counter.logs import Throttle
from counter.messages import parse_message
from counter.problems import ProblemType, problem
from counter.queries import parse_counts_query
from counter.runtime import Runtime
from counter.store import CountStatus

logger = logging.getLogger(__name__)

STORE_RETRY_AFTER_S = 1
LOG_INTERVAL_S = 5.0
_store_log = Throttle(LOG_INTERVAL_S)


class BodyTooLarge(Exception):
    pass


def json_response(content: object, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def receive_message(request: Request) -> Response:
    """POST /webhooks/messages: count one message exactly once."""
    runtime = runtime_of(request)
    limit = runtime.settings.max_body_bytes
    try:
        body = await read_body(request, limit)
    except BodyTooLarge:
        return problem(
            ProblemType.BODY_TOO_LARGE, f"The request body must be at most {limit} bytes."
        )

    if runtime.webhook_verifier is not None:
        try:
            signatures.verify(runtime.webhook_verifier, body, request.headers)
        except InvalidSignature as exc:
            return problem(
                ProblemType.INVALID_SIGNATURE,
                f"{exc}. Sign the request with the shared secret as Standard Webhooks "
                "defines: webhook-id, webhook-timestamp and webhook-signature headers.",
            )

    if not is_json_media_type(request.headers.get("content-type")):
        return problem(
            ProblemType.UNSUPPORTED_MEDIA_TYPE,
            "Send the message as JSON with the header Content-Type: application/json.",
        )

    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return problem(
            ProblemType.MALFORMED_JSON,
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
            f"(byte {exc.pos}).",
        )

    try:
        message = parse_message(payload)
        result = await runtime.store.count(message, datetime.now(UTC))
    except InvalidInput as exc:
        return problem(
            ProblemType.INVALID_FIELDS, "Fix the fields listed in errors.", errors=exc.errors
        )
    except IdReused as exc:
        return problem(
            ProblemType.ID_REUSED,
            f"{exc}. A message id identifies one message; send a new message_id for a new "
            "message, or resend the original created_at.",
        )
    except StoreError as exc:
        return store_unavailable(exc)

    status_code = 202 if result.status is CountStatus.COUNTED else 200
    return json_response(
        {
            "status": result.status.value,
            "message_id": message.message_id,
            "account_id": message.account_id,
            "hour": format_utc(result.hour),
            "date": result.day.isoformat(),
            "day_total": result.day_total,
        },
        status_code,
    )


async def hourly_counts(request: Request) -> Response:
    """GET /counts: the non-zero hourly counts of an account over [from, to)."""
    runtime = runtime_of(request)
    try:
        query = parse_counts_query(request.query_params, runtime.settings.max_range_days)
    except InvalidInput as exc:
        return problem(
            ProblemType.INVALID_FIELDS,
            "Fix the query parameters listed in errors.",
            errors=exc.errors,
        )
    try:
        counts = await runtime.store.hourly_counts(query.account_id, query.start, query.end)
    except StoreError as exc:
        return store_unavailable(exc)
    return json_response(
        [
            {
                "account_id": query.account_id,
                "datetime": format_utc(item.hour),
                "count_messages": item.count,
            }
            for item in counts
        ]
    )


async def healthz(request: Request) -> Response:
    """GET /healthz: the process is up. It does not check Redis."""
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """GET /readyz: 200 only when Redis responds and the count script is loaded."""
    runtime = runtime_of(request)
    try:
        await runtime.store.ensure_scripts()
    except StoreError as exc:
        return json_response({"status": "unavailable", "detail": str(exc)}, 503)
    return json_response({"status": "ready"})


async def metrics(request: Request) -> Response:
    """GET /metrics: dispatcher counters of this process and the outbox of all shards."""
    runtime = runtime_of(request)
    body: dict[str, object] = {
        "dispatcher": runtime.dispatcher.stats.as_dict() if runtime.dispatcher else None,
    }
    try:
        shards = await runtime.outbox.status(int(time.time() * 1000))
    except StoreError as exc:
        return store_unavailable(exc)
    ages = [shard.oldest_age_s for shard in shards if shard.oldest_age_s is not None]
    body["outbox"] = {
        "backlog": sum(shard.backlog for shard in shards),
        "pending": sum(shard.pending for shard in shards),
        "oldest_age_s": max(ages, default=None),
        "dead_letters": sum(shard.dead_letters for shard in shards),
    }
    return json_response(body)


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, raising BodyTooLarge as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


def is_json_media_type(content_type: str | None) -> bool:
    """Accept application/json and any `+json` type (RFC 6839), parameters ignored."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def store_unavailable(exc: StoreError) -> Response:
    held_back = _store_log.allow()
    if held_back is not None:
        logger.warning("redis unavailable error=%s similar_held_back=%d", exc, held_back)
    return problem(
        ProblemType.STORE_UNAVAILABLE,
        "Redis is unavailable. Retry the same request later; if the message was counted "
        "after all, the retry is answered as a duplicate.",
        headers={"retry-after": str(STORE_RETRY_AFTER_S)},
    )
