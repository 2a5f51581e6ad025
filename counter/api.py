"""HTTP endpoints. Each handler validates with the pure modules and calls the store.

Every step that can refuse a request raises Rejected with its problem response, so a
handler reads as its list of steps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from counter import signatures
from counter.buckets import format_utc
from counter.errors import (
    FieldError,
    IdReused,
    InvalidInput,
    InvalidSignature,
    StoreError,
    StoreUnavailable,
)
from counter.logs import LOG_INTERVAL_S, Throttle
from counter.messages import Message, parse_message
from counter.outbox import total_status
from counter.problems import ProblemType, problem
from counter.queries import CountsQuery, invalid_utf8_parameters, parse_counts_query
from counter.runtime import Runtime
from counter.store import CountResult, CountStatus

logger = logging.getLogger(__name__)

STORE_RETRY_AFTER_S = 1
COUNT_UNAVAILABLE_DETAIL = (
    "Redis is unavailable. Retry the same request later; if the message was counted after "
    "all, the retry is answered as a duplicate."
)
_store_log = Throttle(LOG_INTERVAL_S)


class Rejected(Exception):
    """A request step refused the request; `response` is the problem to send back."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def json_response(content: object, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def receive_message(request: Request) -> Response:
    """POST /webhooks/messages: count one message once within the dedupe TTL."""
    runtime = runtime_of(request)
    try:
        body = await read_body(
            request, runtime.settings.max_body_bytes, runtime.settings.body_timeout_seconds
        )
        verify_signature(runtime, body, request)
        check_json_content_type(request)
        message = validate_message(decode_json(body))
        result = await count(runtime, message)
    except Rejected as rejected:
        return rejected.response

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
        query = validate_counts_query(request, runtime.settings.max_range_days)
        async with store_errors():
            counts = await runtime.store.hourly_counts(query.account_id, query.start, query.end)
    except Rejected as rejected:
        return rejected.response
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
    """GET /readyz: 200 only when Redis responds, the script is loaded and no dispatcher crashed."""
    runtime = runtime_of(request)
    if runtime.dispatcher is not None and runtime.dispatcher.error is not None:
        return problem(ProblemType.NOT_READY, "The dispatcher crashed; see the service log.")
    try:
        await runtime.store.ensure_scripts()
    except StoreError as exc:
        log_store_error(exc)
        return problem(ProblemType.NOT_READY, "Redis is unavailable; see the service log.")
    return json_response({"status": "ready"})


async def metrics(request: Request) -> Response:
    """GET /metrics: dispatcher counters of this process and the outbox of all shards."""
    runtime = runtime_of(request)
    try:
        async with store_errors():
            shards = await runtime.outbox.status(int(time.time() * 1000))
    except Rejected as rejected:
        return rejected.response
    total = total_status(shards)
    return json_response(
        {
            "dispatcher": runtime.dispatcher.stats.as_dict() if runtime.dispatcher else None,
            "outbox": {
                "backlog": total.backlog,
                "pending": total.pending,
                "oldest_age_s": total.oldest_age_s,
                "dead_letters": total.dead_letters,
            },
        }
    )


async def internal_error(request: Request, exc: Exception) -> Response:
    """Render an unhandled exception as problem+json; Starlette still logs the traceback."""
    return problem(ProblemType.INTERNAL_ERROR, "The service failed to handle the request.")


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """Read the body within `timeout_s`, stopping as soon as it passes `limit` bytes."""
    too_large = Rejected(
        problem(ProblemType.BODY_TOO_LARGE, f"The request body must be at most {limit} bytes.")
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise too_large
    except TimeoutError:
        raise Rejected(
            problem(
                ProblemType.REQUEST_TIMEOUT,
                f"The request body did not arrive within {timeout_s:g} seconds.",
            )
        ) from None
    except ClientDisconnect:
        logger.debug("client disconnected while sending the body")
        raise Rejected(Response(status_code=400)) from None
    return bytes(body)


def verify_signature(runtime: Runtime, body: bytes, request: Request) -> None:
    if runtime.webhook_verifier is None:
        return
    try:
        signatures.verify(runtime.webhook_verifier, body, request.headers)
    except InvalidSignature as exc:
        raise Rejected(
            problem(
                ProblemType.INVALID_SIGNATURE,
                f"Signature check failed: {exc}. Sign the exact body with the shared secret as "
                "Standard Webhooks "
                "defines, in the webhook-id, webhook-timestamp and webhook-signature headers.",
            )
        ) from None


def check_json_content_type(request: Request) -> None:
    content_types = request.headers.getlist("content-type")
    encodings = [
        token.strip().lower()
        for header in request.headers.getlist("content-encoding")
        for token in header.split(",")
    ]
    if len(content_types) != 1 or not is_json_media_type(content_types[0]):
        detail = "Send the message as JSON with one header Content-Type: application/json."
    elif not is_utf8_charset(content_types[0]):
        detail = "Send the message as JSON in UTF-8: drop the charset or set charset=utf-8."
    elif any(encoding != "identity" for encoding in encodings):
        detail = (
            f"Content-Encoding {', '.join(encodings)!r} is not supported; "
            "send the body uncompressed."
        )
    else:
        return
    raise Rejected(problem(ProblemType.UNSUPPORTED_MEDIA_TYPE, detail))


def decode_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Rejected(
            problem(ProblemType.MALFORMED_JSON, describe_json_error(body, exc))
        ) from None


def describe_json_error(body: bytes, exc: orjson.JSONDecodeError) -> str:
    """Say where the body stops being JSON, in bytes for bad UTF-8 and characters otherwise."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as utf8_error:
        return f"The body is not valid UTF-8 at byte {utf8_error.start}. Send JSON in UTF-8."
    return (
        f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
        f"(character {exc.pos})."
    )


def validate_message(payload: Any) -> Message:
    try:
        return parse_message(payload)
    except InvalidInput as exc:
        raise Rejected(
            problem(ProblemType.INVALID_FIELDS, "Fix the fields listed in errors.", exc.errors)
        ) from None


def validate_counts_query(request: Request, max_range_days: int) -> CountsQuery:
    params = request.query_params
    repeated = sorted({key for key in params if len(params.getlist(key)) > 1})
    errors = [FieldError(key, "must be given once") for key in repeated]
    encoding_errors = invalid_utf8_parameters(request.scope["query_string"])
    if encoding_errors:
        # The other checks would only repeat the same values with U+FFFD in them.
        raise Rejected(
            problem(
                ProblemType.INVALID_FIELDS,
                "Fix the query parameters listed in errors.",
                errors + encoding_errors,
            )
        )
    query: CountsQuery | None = None
    try:
        query = parse_counts_query(params, max_range_days)
    except InvalidInput as exc:
        errors += exc.errors
    if errors or query is None:
        raise Rejected(
            problem(
                ProblemType.INVALID_FIELDS, "Fix the query parameters listed in errors.", errors
            )
        )
    return query


async def count(runtime: Runtime, message: Message) -> CountResult:
    try:
        async with store_errors(COUNT_UNAVAILABLE_DETAIL):
            return await runtime.store.count(message, datetime.now(UTC))
    except IdReused as exc:
        raise Rejected(
            problem(
                ProblemType.ID_REUSED,
                f"{exc}. A message id identifies one message; send a new message_id for a new "
                "message, or resend the original created_at.",
            )
        ) from None


@asynccontextmanager
async def store_errors(
    unavailable_detail: str = "Redis is unavailable. Retry the same request later.",
) -> AsyncIterator[None]:
    """Turn StoreUnavailable into 503 with Retry-After, and any other StoreError into 500."""
    try:
        yield
    except StoreUnavailable as exc:
        log_store_error(exc)
        raise Rejected(
            problem(
                ProblemType.STORE_UNAVAILABLE,
                unavailable_detail,
                headers={"retry-after": str(STORE_RETRY_AFTER_S)},
            )
        ) from exc
    except StoreError as exc:
        log_store_error(exc)
        raise Rejected(
            problem(ProblemType.INTERNAL_ERROR, "A Redis command failed; see the service log.")
        ) from exc


def log_store_error(exc: StoreError) -> None:
    held_back = _store_log.allow()
    if held_back is not None:
        logger.warning("redis error=%s similar_held_back=%d", exc, held_back)


def is_utf8_charset(content_type: str) -> bool:
    """Accept a content type without a charset, or with charset=utf-8 (JSON is UTF-8)."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in {
            "utf-8",
            "utf8",
        }:
            return False
    return True


def is_json_media_type(content_type: str) -> bool:
    """Accept application/json and any `+json` type (RFC 6839), parameters ignored."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
