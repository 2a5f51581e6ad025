"""RFC 9457 problem details: the body of every error response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

import orjson
from starlette.responses import Response

from counter.errors import FieldError

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:message-counter:problem:"


class ProblemType(StrEnum):
    """The `type` of each problem, with its HTTP status."""

    MALFORMED_JSON = "malformed-json"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    BODY_TOO_LARGE = "body-too-large"
    INVALID_FIELDS = "invalid-fields"
    ID_REUSED = "message-id-reused"
    INVALID_SIGNATURE = "invalid-signature"
    STORE_UNAVAILABLE = "store-unavailable"
    NOT_READY = "not-ready"
    REQUEST_TIMEOUT = "request-timeout"
    INTERNAL_ERROR = "internal-error"
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"


_STATUS_AND_TITLE: dict[ProblemType, tuple[int, str]] = {
    ProblemType.MALFORMED_JSON: (400, "Malformed JSON"),
    ProblemType.UNSUPPORTED_MEDIA_TYPE: (415, "Unsupported media type"),
    ProblemType.BODY_TOO_LARGE: (413, "Request body too large"),
    ProblemType.INVALID_FIELDS: (422, "Invalid fields"),
    ProblemType.ID_REUSED: (422, "Message id reused with another created_at"),
    ProblemType.INVALID_SIGNATURE: (401, "Invalid webhook signature"),
    ProblemType.STORE_UNAVAILABLE: (503, "Storage unavailable"),
    ProblemType.NOT_READY: (503, "Service not ready"),
    ProblemType.REQUEST_TIMEOUT: (408, "Request timeout"),
    ProblemType.INTERNAL_ERROR: (500, "Internal error"),
    ProblemType.NOT_FOUND: (404, "Not found"),
    ProblemType.METHOD_NOT_ALLOWED: (405, "Method not allowed"),
}


def problem(
    kind: ProblemType,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build a problem+json response; `errors` lists one entry per offending field."""
    status, title = _STATUS_AND_TITLE[kind]
    body: dict[str, object] = {
        "type": PROBLEM_TYPE_PREFIX + kind.value,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [{"field": error.field, "detail": error.detail} for error in errors]
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type=PROBLEM_CONTENT_TYPE
    )
