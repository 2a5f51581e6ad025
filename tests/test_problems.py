"""RFC 9457 problem+json responses built by counter.problems."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.responses import Response

from counter.errors import FieldError
from counter.problems import PROBLEM_CONTENT_TYPE, ProblemType, problem

STATUS_AND_TITLE = {
    ProblemType.MALFORMED_JSON: (400, "Malformed JSON"),
    ProblemType.INVALID_SIGNATURE: (401, "Invalid webhook signature"),
    ProblemType.NOT_FOUND: (404, "Not found"),
    ProblemType.METHOD_NOT_ALLOWED: (405, "Method not allowed"),
    ProblemType.BODY_TOO_LARGE: (413, "Request body too large"),
    ProblemType.UNSUPPORTED_MEDIA_TYPE: (415, "Unsupported media type"),
    ProblemType.INVALID_FIELDS: (422, "Invalid fields"),
    ProblemType.ID_REUSED: (422, "Message id reused with another created_at"),
    ProblemType.STORE_UNAVAILABLE: (503, "Storage unavailable"),
    ProblemType.NOT_READY: (503, "Service not ready"),
    ProblemType.REQUEST_TIMEOUT: (408, "Request timeout"),
    ProblemType.INTERNAL_ERROR: (500, "Internal error"),
}


def body_of(response: Response) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(bytes(response.body))
    return body


def test_problem_table_covers_every_type() -> None:
    assert set(STATUS_AND_TITLE) == set(ProblemType)


@pytest.mark.parametrize("kind", list(ProblemType), ids=lambda kind: kind.value)
def test_problem_status_and_body(kind: ProblemType) -> None:
    status, title = STATUS_AND_TITLE[kind]

    response = problem(kind, "Something specific went wrong.")

    body = body_of(response)
    assert response.status_code == status
    assert body["type"] == f"urn:message-counter:problem:{kind.value}"
    assert body["title"] == title
    assert body["status"] == status
    assert body["detail"] == "Something specific went wrong."


def test_problem_content_type() -> None:
    response = problem(ProblemType.NOT_FOUND, "No route matches /nope.")

    assert PROBLEM_CONTENT_TYPE == "application/problem+json"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.media_type == "application/problem+json"


def test_problem_without_errors_has_no_errors_member() -> None:
    response = problem(ProblemType.MALFORMED_JSON, "Expecting value: line 1 column 1")

    assert set(body_of(response)) == {"type", "title", "status", "detail"}


def test_problem_lists_field_errors_in_order() -> None:
    errors = [
        FieldError("message_id", "must not be empty"),
        FieldError("created_at", "is required"),
    ]

    response = problem(ProblemType.INVALID_FIELDS, "2 fields are invalid.", errors)

    body = body_of(response)
    assert body["errors"] == [
        {"field": "message_id", "detail": "must not be empty"},
        {"field": "created_at", "detail": "is required"},
    ]
    assert set(body) == {"type", "title", "status", "detail", "errors"}


def test_problem_passes_extra_headers() -> None:
    response = problem(
        ProblemType.STORE_UNAVAILABLE, "Redis timed out.", headers={"Retry-After": "1"}
    )

    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"


def test_problem_content_length_matches_body() -> None:
    response = problem(
        ProblemType.INVALID_FIELDS, "Invalid account ü.", [FieldError("account_id", "日本")]
    )

    assert response.headers["content-length"] == str(len(response.body))
    assert body_of(response)["errors"] == [{"field": "account_id", "detail": "日本"}]
