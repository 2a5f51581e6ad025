"""JSON and problem+json (RFC 9457) responses for the mock's endpoints."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

JSON_CONTENT_TYPE = "application/json"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON_CONTENT_TYPE)


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    """Build an RFC 9457 problem response.

    The type is "about:blank", for which RFC 9457 (section 4.2.1) specifies that the title should
    be the reason phrase of the status.
    """
    problem = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    return web.Response(
        body=orjson.dumps(problem),
        status=status,
        headers=headers,
        content_type=PROBLEM_CONTENT_TYPE,
    )
