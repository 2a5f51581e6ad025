"""Every error path of the HTTP API, against the real service."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest

from counter.embedded import EmbeddedValkey
from tests.support.client import Reply, request, wait_until
from tests.support.stack import service_process, url_of

PROBLEM = "urn:message-counter:problem:"
VALID = {"message_id": "m-1", "account_id": "acc-errors", "created_at": "2025-09-18T10:15:00Z"}


def post(service_url: str, **kwargs: Any) -> Reply:
    return request("POST", f"{service_url}/webhooks/messages", **kwargs)


def assert_problem(reply: Reply, status: int, kind: str) -> dict[str, Any]:
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["type"] == PROBLEM + kind
    assert body["status"] == status
    assert body["detail"]
    return body


def error_fields(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("body", "position"),
    [
        (b'{"message_id": ', "line 1, column 16"),
        (b'{"message_id": "m-1",\n "account_id": }', "line 2, column 16"),
        (b"", "line 1, column 1"),
        (b'{"message_id": "\xff"}', "not valid UTF-8 at byte 16"),
    ],
    ids=["truncated", "missing-value", "empty", "not-utf8"],
)
def test_webhook_malformed_json_names_position(
    service_url: str, body: bytes, position: str
) -> None:
    reply = post(service_url, body=body, headers={"content-type": "application/json"})

    problem = assert_problem(reply, 400, "malformed-json")
    assert position in problem["detail"]


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"],
    ids=["missing", "text", "form", "lookalike"],
)
def test_webhook_non_json_content_type_is_415(service_url: str, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}

    reply = post(service_url, body=b'{"message_id": "m-1"}', headers=headers)

    assert_problem(reply, 415, "unsupported-media-type")


@pytest.mark.parametrize(
    ("headers", "hint"),
    [
        ({"content-type": "application/json; charset=utf-16"}, "UTF-8"),
        ({"content-type": "application/json;charset=ISO-8859-1"}, "UTF-8"),
        ({"content-type": "application/json", "content-encoding": "gzip"}, "'gzip'"),
    ],
    ids=["utf-16", "latin-1", "gzip"],
)
def test_webhook_other_encoding_is_415(
    service_url: str, account: str, headers: dict[str, str], hint: str
) -> None:
    body = orjson.dumps({**VALID, "account_id": account})

    reply = post(service_url, body=body, headers=headers)
    counts = request(
        "GET",
        f"{service_url}/counts?account_id={account}"
        "&from=2025-09-18T00:00:00Z&to=2025-09-19T00:00:00Z",
    )

    problem = assert_problem(reply, 415, "unsupported-media-type")
    assert hint in problem["detail"]
    assert counts.json() == []


@pytest.mark.parametrize(
    "headers",
    [
        [("content-type", "application/json"), ("content-type", "text/plain")],
        [("content-type", "application/json; charset=utf-8; charset=utf-16")],
        [
            ("content-type", "application/json"),
            ("content-encoding", "identity"),
            ("content-encoding", "gzip"),
        ],
    ],
    ids=["two-content-types", "two-charsets", "two-encodings"],
)
def test_webhook_repeated_header_is_415(
    service_url: str, account: str, headers: list[tuple[str, str]]
) -> None:
    body = orjson.dumps({**VALID, "account_id": account})
    connection = http.client.HTTPConnection(*service_url.removeprefix("http://").split(":"))
    try:
        connection.putrequest("POST", "/webhooks/messages")
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("content-length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        problem = orjson.loads(response.read())
    finally:
        connection.close()

    assert response.status == 415
    assert problem["type"] == PROBLEM + "unsupported-media-type"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        'application/json; charset="UTF-8"',
        "APPLICATION/JSON",
        "application/vnd.whatsapp+json",
    ],
    ids=["charset", "quoted-charset", "uppercase", "vendor-json"],
)
def test_webhook_json_media_types_are_accepted(
    service_url: str, account: str, content_type: str
) -> None:
    body = (
        f'{{"message_id": "m-1", "account_id": "{account}", "created_at": "2025-09-18T10:15:00Z"}}'
    )

    reply = post(service_url, body=body.encode(), headers={"content-type": content_type})

    assert reply.status == 202


def test_webhook_body_over_limit_is_413(service_url: str) -> None:
    padding = "x" * (64 * 1024)

    reply = post(service_url, json={**VALID, "metadata": {"padding": padding}})

    assert_problem(reply, 413, "body-too-large")


def test_webhook_body_at_limit_is_accepted(service_url: str, account: str) -> None:
    message = {**VALID, "account_id": account, "metadata": {"padding": ""}}
    size_without_padding = len(request_body(message))
    message["metadata"]["padding"] = "x" * (64 * 1024 - size_without_padding)

    reply = post(
        service_url, body=request_body(message), headers={"content-type": "application/json"}
    )

    assert len(request_body(message)) == 64 * 1024
    assert reply.status == 202


def request_body(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"message_id": None}, "message_id"),
        ({"message_id": ""}, "message_id"),
        ({"message_id": "   "}, "message_id"),
        ({"message_id": 42}, "message_id"),
        ({"message_id": "m" * 257}, "message_id"),
        ({"message_id": "m\n1"}, "message_id"),
        ({"account_id": ""}, "account_id"),
        ({"account_id": ["acc"]}, "account_id"),
        ({"account_id": "a\x00b"}, "account_id"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": "2025-09-18T10:15:00"}, "created_at"),
        ({"created_at": "2025-09-18"}, "created_at"),
        ({"created_at": 1758190500}, "created_at"),
        ({"created_at": "0001-01-01T00:00:00+05:00"}, "created_at"),
        ({"metadata": "whatsapp"}, "metadata"),
        ({"metadata": [1, 2]}, "metadata"),
    ],
    ids=[
        "id-null",
        "id-empty",
        "id-blank",
        "id-number",
        "id-too-long",
        "id-newline",
        "account-empty",
        "account-array",
        "account-nul",
        "time-words",
        "time-no-offset",
        "time-date-only",
        "time-number",
        "time-before-year-1",
        "metadata-string",
        "metadata-array",
    ],
)
def test_webhook_invalid_field_is_422(
    service_url: str, changes: dict[str, Any], field: str
) -> None:
    reply = post(service_url, json={**VALID, **changes})

    problem = assert_problem(reply, 422, "invalid-fields")
    assert error_fields(problem) == [field]


@pytest.mark.parametrize("field", ["message_id", "account_id", "created_at"])
def test_webhook_missing_field_is_422(service_url: str, field: str) -> None:
    message = {key: value for key, value in VALID.items() if key != field}

    reply = post(service_url, json=message)

    problem = assert_problem(reply, 422, "invalid-fields")
    assert error_fields(problem) == [field]


def test_webhook_lists_every_invalid_field(service_url: str) -> None:
    reply = post(service_url, json={"message_id": 1, "created_at": "now", "metadata": 3})

    problem = assert_problem(reply, 422, "invalid-fields")
    assert error_fields(problem) == ["message_id", "account_id", "created_at", "metadata"]


def test_webhook_non_object_body_is_422(service_url: str) -> None:
    reply = post(service_url, json=[VALID])

    problem = assert_problem(reply, 422, "invalid-fields")
    assert error_fields(problem) == ["body"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2025-09-18T00:00:00Z&to=2025-09-19T00:00:00Z", "account_id"),
        ("account_id=&from=2025-09-18T00:00:00Z&to=2025-09-19T00:00:00Z", "account_id"),
        ("account_id=a&to=2025-09-19T00:00:00Z", "from"),
        ("account_id=a&from=2025-09-18T00:00:00Z", "to"),
        ("account_id=a&from=2025-09-18&to=2025-09-19T00:00:00Z", "from"),
        ("account_id=a&from=2025-09-18T00:00:00Z&to=tomorrow", "to"),
        ("account_id=a&from=2025-09-18T00:00:00+00:00&to=2025-09-19T00:00:00Z", "from"),
        ("account_id=a&from=2025-09-19T00:00:00Z&to=2025-09-18T00:00:00Z", "to"),
        ("account_id=a&from=2024-01-01T00:00:00Z&to=2025-01-02T00:00:00Z", "to"),
    ],
    ids=[
        "no-account",
        "empty-account",
        "no-from",
        "no-to",
        "from-date-only",
        "to-words",
        "unescaped-plus",
        "to-before-from",
        "range-too-long",
    ],
)
def test_counts_invalid_query_is_422(service_url: str, query: str, field: str) -> None:
    reply = request("GET", f"{service_url}/counts?{query}")

    problem = assert_problem(reply, 422, "invalid-fields")
    assert error_fields(problem) == [field]


def test_counts_unescaped_plus_gets_hint(service_url: str) -> None:
    query = "account_id=a&from=2025-09-18T00:00:00+00:00&to=2025-09-19T00:00:00Z"

    problem = request("GET", f"{service_url}/counts?{query}").json()

    assert "%2B" in problem["errors"][0]["detail"]


def test_counts_full_range_is_accepted(service_url: str) -> None:
    query = "account_id=a&from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z"

    reply = request("GET", f"{service_url}/counts?{query}")

    assert reply.status == 200
    assert reply.json() == []


def test_unknown_path_is_404_problem(service_url: str) -> None:
    assert_problem(request("GET", f"{service_url}/nowhere"), 404, "not-found")


def test_wrong_method_is_405_problem(service_url: str) -> None:
    reply = request("GET", f"{service_url}/webhooks/messages")

    assert_problem(reply, 405, "method-not-allowed")
    assert reply.headers["allow"] == "POST"


def test_health_and_readiness_are_ok(service_url: str) -> None:
    health = request("GET", f"{service_url}/healthz")
    ready = request("GET", f"{service_url}/readyz")

    assert health.status == 200
    assert ready.status == 200
    assert ready.json() == {"status": "ready"}


def test_counts_repeated_parameter_is_422(service_url: str) -> None:
    query = "account_id=a&account_id=b&from=2025-09-18T00:00:00Z&to=2025-09-19T00:00:00Z"

    reply = request("GET", f"{service_url}/counts?{query}")

    problem = assert_problem(reply, 422, "invalid-fields")
    assert problem["errors"] == [{"field": "account_id", "detail": "must be given once"}]


def test_counts_invalid_utf8_named_once(service_url: str) -> None:
    query = "account_id=a&from=2025-09-18T00:00:00Z%FF&to=2025-09-19T00:00:00Z"

    reply = request("GET", f"{service_url}/counts?{query}")

    problem = assert_problem(reply, 422, "invalid-fields")
    assert problem["errors"] == [{"field": "from", "detail": "must be percent-encoded UTF-8"}]


@pytest.mark.parametrize("account_id", ["%FF", "%ED%A0%80"], ids=["invalid-byte", "surrogate"])
def test_counts_invalid_utf8_is_422(service_url: str, account_id: str) -> None:
    query = f"account_id={account_id}&from=2025-09-18T00:00:00Z&to=2025-09-19T00:00:00Z"

    reply = request("GET", f"{service_url}/counts?{query}")

    problem = assert_problem(reply, 422, "invalid-fields")
    assert problem["errors"] == [{"field": "account_id", "detail": "must be percent-encoded UTF-8"}]


def test_counts_last_representable_day(service_url: str, account: str) -> None:
    message = {"message_id": "m-1", "account_id": account, "created_at": "9999-12-31T23:30:00Z"}
    post(service_url, json=message)

    reply = request(
        "GET",
        f"{service_url}/counts?account_id={account}&from=9999-12-31T00:00:00Z&to=9999-12-31T23:59:59Z",
    )

    assert reply.status == 200
    assert reply.json() == [
        {"account_id": account, "datetime": "9999-12-31T23:00:00Z", "count_messages": 1}
    ]


def test_webhook_early_year_keeps_four_digits(service_url: str, account: str) -> None:
    message = {"message_id": "m-1", "account_id": account, "created_at": "0001-01-01t00:30:00z"}

    reply = post(service_url, json=message)

    assert reply.status == 202
    assert reply.json()["hour"] == "0001-01-01T00:00:00Z"
    assert reply.json()["date"] == "0001-01-01"


def test_webhook_timestamp_error_gives_reason(service_url: str) -> None:
    reply = post(service_url, json={**VALID, "created_at": "2025-02-30T10:15:00Z"})

    problem = assert_problem(reply, 422, "invalid-fields")
    assert "day is out of range for month" in problem["errors"][0]["detail"]


def send_partial_body(service_url: str, declared: int, sent: bytes) -> bytes:
    """Declare `declared` body bytes, send only `sent`, and return the server's response."""
    host, port = service_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (
            "POST /webhooks/messages HTTP/1.1\r\nHost: test\r\n"
            f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
        )
        sock.sendall(head.encode() + sent)
        return read_response(sock)


def read_response(sock: socket.socket) -> bytes:
    """Read one HTTP response whole; its head and body may arrive in separate segments."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_webhook_slow_body_is_408(tmp_path: Path, valkey: EmbeddedValkey, mock_url: str) -> None:
    service = service_process(
        tmp_path,
        valkey.url,
        f"{mock_url}/daily-totals",
        env={"COUNTER_BODY_TIMEOUT_SECONDS": "0.5"},
        name="slow-body",
    )
    service.start()
    try:
        answer = send_partial_body(url_of(service), declared=100, sent=b'{"message_id"')
    finally:
        service.stop()

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"urn:message-counter:problem:request-timeout" in answer


def test_webhook_client_disconnect_logs_no_traceback(
    tmp_path: Path, valkey: EmbeddedValkey, mock_url: str
) -> None:
    service = service_process(
        tmp_path,
        valkey.url,
        f"{mock_url}/daily-totals",
        env={"COUNTER_LOG_LEVEL": "DEBUG"},
        name="disconnect",
    )
    service.start()
    try:
        host, port = url_of(service).removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /webhooks/messages HTTP/1.1\r\nHost: test\r\n"
                b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mess'
            )
        wait_until(lambda: "client disconnected while sending the body" in service.output(), 10)
    finally:
        service.stop()

    assert "Traceback" not in service.output()
