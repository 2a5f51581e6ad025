"""Tests for the mock external service.

The fault settings, the fault decision and the event log are tested in-process. Everything
else runs against the real mock, started as a child process on the loopback interface.
"""

from __future__ import annotations

import base64
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from mock_external.cli import main
from mock_external.faults import (
    RANDOM_FAILURE_STATUS,
    FaultOutcome,
    Faults,
    InvalidFaultsError,
    decide_fault,
)
from mock_external.recorder import EventLog, EventStats, InvalidEventError
from tests.support.processes import (
    DIRECT_OPENER,
    LOOPBACK,
    ManagedProcess,
    free_port,
    python_module,
)

SECRET = "whsec_" + base64.b64encode(b"mock-external-test-secret-32byte").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-nobody-configured").decode()
PROBLEM_CONTENT_TYPE = "application/problem+json"
REQUEST_TIMEOUT_S = 10
LATENCY_MS = 300
# standardwebhooks rejects a timestamp more than 5 minutes away from the server's clock.
STALE_AGE = timedelta(minutes=10)

# Invalid fault settings: (field, value), each with a readable test id.
INVALID_FAULT_SETTINGS = [
    pytest.param("failure_rate", 1.5, id="rate-above-one"),
    pytest.param("failure_rate", -0.1, id="rate-negative"),
    pytest.param("failure_rate", "0.5", id="rate-string"),
    pytest.param("failure_rate", True, id="rate-bool"),
    pytest.param("status", 200, id="status-success"),
    pytest.param("status", 599, id="status-nonstandard"),
    pytest.param("status", "500", id="status-string"),
    pytest.param("status", 500.0, id="status-float"),
    pytest.param("status", True, id="status-bool"),
    pytest.param("retry_after_s", -1, id="retry-after-negative"),
    pytest.param("retry_after_s", 1.5, id="retry-after-fraction"),
    pytest.param("retry_after_s", 86_401, id="retry-after-over-a-day"),
    pytest.param("latency_ms", -1, id="latency-negative"),
    pytest.param("latency_ms", None, id="latency-null"),
    pytest.param("latency_ms", 300_001, id="latency-over-maximum"),
    pytest.param("down", "yes", id="down-string"),
    pytest.param("down", 1, id="down-integer"),
]


def make_event(
    event_id: str = "dt_1", account_id: str = "acc_1", date: str = "2025-09-18", total: int = 3
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "daily_total.updated",
        "schema_version": 1,
        "account_id": account_id,
        "date": date,
        "total": total,
        "message_id": f"m-{total}",
        "computed_at": f"{date}T10:15:00.123Z",
    }


# --- Faults: validation -------------------------------------------------------------------


def test_faults_from_empty_mapping_is_default() -> None:
    assert Faults.from_mapping({}) == Faults()


def test_faults_from_mapping_reads_every_field() -> None:
    faults = Faults.from_mapping(
        {"failure_rate": 0.25, "status": 503, "retry_after_s": 7, "latency_ms": 40, "down": True}
    )

    assert faults == Faults(
        failure_rate=0.25, status=503, retry_after_s=7, latency_ms=40, down=True
    )


def test_faults_from_mapping_converts_integer_rate() -> None:
    faults = Faults.from_mapping({"failure_rate": 1})

    assert isinstance(faults.failure_rate, float)
    assert faults.failure_rate == 1.0


def test_faults_to_dict_round_trips() -> None:
    faults = Faults(failure_rate=0.5, status=429, retry_after_s=3, latency_ms=10)

    assert Faults.from_mapping(faults.to_dict()) == faults


@pytest.mark.parametrize(("field", "value"), INVALID_FAULT_SETTINGS)
def test_faults_from_mapping_rejects_invalid_value(field: str, value: object) -> None:
    with pytest.raises(InvalidFaultsError) as excinfo:
        Faults.from_mapping({field: value})

    assert excinfo.value.field == field
    assert f"invalid fault setting {field}: expected " in str(excinfo.value)
    assert f"got {value!r}" in str(excinfo.value)


def test_faults_from_mapping_rejects_unknown_field() -> None:
    with pytest.raises(InvalidFaultsError) as excinfo:
        Faults.from_mapping({"colour": "red"})

    assert excinfo.value.field == "colour"
    assert "unknown fault setting colour" in str(excinfo.value)
    assert "failure_rate" in str(excinfo.value)


def test_faults_error_is_value_error() -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        Faults(latency_ms=-5)


# --- Faults: decision for one event POST --------------------------------------------------


def test_decide_fault_default_does_nothing() -> None:
    assert decide_fault(Faults(), random.Random(1)) == FaultOutcome()


def test_decide_fault_down_overrides_everything() -> None:
    faults = Faults(failure_rate=1.0, status=503, retry_after_s=5, latency_ms=100, down=True)

    assert decide_fault(faults, random.Random(1)) == FaultOutcome(close_connection=True)


@pytest.mark.parametrize("status", [429, 503])
def test_decide_fault_status_sends_retry_after(status: int) -> None:
    outcome = decide_fault(Faults(status=status, retry_after_s=7), random.Random(1))

    assert outcome.status == status
    assert outcome.retry_after_s == 7


def test_decide_fault_500_omits_retry_after() -> None:
    outcome = decide_fault(Faults(status=500, retry_after_s=7), random.Random(1))

    assert outcome.status == 500
    assert outcome.retry_after_s is None


def test_decide_fault_status_overrides_rate() -> None:
    outcome = decide_fault(Faults(failure_rate=1.0, status=503), random.Random(1))

    assert outcome.status == 503


def test_decide_fault_keeps_latency() -> None:
    outcome = decide_fault(Faults(latency_ms=250, status=500), random.Random(1))

    assert outcome.delay_ms == 250


def test_decide_fault_rate_one_always_fails() -> None:
    rng = random.Random(1)
    faults = Faults(failure_rate=1.0, retry_after_s=7)

    outcomes = [decide_fault(faults, rng) for _ in range(200)]

    assert {outcome.status for outcome in outcomes} == {RANDOM_FAILURE_STATUS}
    assert {outcome.retry_after_s for outcome in outcomes} == {None}


def test_decide_fault_rate_zero_draws_nothing() -> None:
    rng = random.Random(1)
    state_before = rng.getstate()

    outcome = decide_fault(Faults(failure_rate=0.0), rng)

    assert outcome.status is None
    assert rng.getstate() == state_before


def test_decide_fault_rate_half_fails_about_half() -> None:
    rng = random.Random(1234)
    faults = Faults(failure_rate=0.5)

    failures = sum(decide_fault(faults, rng).status is not None for _ in range(1000))

    assert 400 <= failures <= 600


def test_decide_fault_same_seed_same_outcomes() -> None:
    faults = Faults(failure_rate=0.3)
    first_rng, second_rng = random.Random(7), random.Random(7)

    first = [decide_fault(faults, first_rng) for _ in range(50)]
    second = [decide_fault(faults, second_rng) for _ in range(50)]

    assert first == second


# --- Event log ----------------------------------------------------------------------------


def test_event_log_first_copy_wins() -> None:
    log = EventLog()

    first_is_new = log.record(make_event(total=3))
    second_is_new = log.record(make_event(total=4))

    assert first_is_new
    assert not second_is_new
    assert log.events() == [make_event(total=3)]


def test_event_log_counts_each_outcome() -> None:
    log = EventLog()
    log.record(make_event("dt_1"))
    log.record(make_event("dt_2"))
    log.record(make_event("dt_1"))
    log.count_rejected()

    assert log.stats() == EventStats(received=3, distinct=2, duplicates=1, rejected=1)


def test_event_log_lists_oldest_first() -> None:
    log = EventLog()
    for event_id in ["dt_c", "dt_a", "dt_b"]:
        log.record(make_event(event_id))

    assert [event["event_id"] for event in log.events()] == ["dt_c", "dt_a", "dt_b"]


def test_event_log_filters_by_account_and_date() -> None:
    log = EventLog()
    log.record(make_event("dt_1", account_id="acc_1", date="2025-09-18"))
    log.record(make_event("dt_2", account_id="acc_2", date="2025-09-18"))
    log.record(make_event("dt_3", account_id="acc_1", date="2025-09-19"))

    by_account = [event["event_id"] for event in log.events(account_id="acc_1")]
    by_date = [event["event_id"] for event in log.events(date="2025-09-18")]
    by_both = [event["event_id"] for event in log.events(account_id="acc_1", date="2025-09-19")]

    assert by_account == ["dt_1", "dt_3"]
    assert by_date == ["dt_1", "dt_2"]
    assert by_both == ["dt_3"]


def test_event_log_clear_resets_everything() -> None:
    log = EventLog()
    log.record(make_event("dt_1"))
    log.record(make_event("dt_1"))
    log.count_rejected()

    log.clear()

    assert log.events() == []
    assert log.stats() == EventStats(received=0, distinct=0, duplicates=0, rejected=0)


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({}, id="missing"),
        pytest.param({"event_id": ""}, id="empty"),
        pytest.param({"event_id": 7}, id="integer"),
    ],
)
def test_event_log_rejects_bad_event_id(event: dict[str, Any]) -> None:
    log = EventLog()

    with pytest.raises(InvalidEventError, match="event_id"):
        log.record(event)

    assert log.stats().received == 0


# --- Command line -------------------------------------------------------------------------


def test_cli_rejects_invalid_fault_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["--failure-rate", "2"])

    assert excinfo.value.code == 2
    assert "argument --failure-rate: expected a number from 0 to 1" in capsys.readouterr().err


def test_cli_rejects_empty_secret(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["--secret", "whsec_"])

    assert excinfo.value.code == 2
    assert "argument --secret: invalid webhook secret" in capsys.readouterr().err


# --- HTTP helpers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def send(
    method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
) -> Reply:
    """Send one request and return the reply, whatever its status."""
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with DIRECT_OPENER.open(request, timeout=REQUEST_TIMEOUT_S) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, error.headers, error.read())


def post_event(
    base_url: str, event: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Reply:
    return post_body(base_url, orjson.dumps(event), headers)


def post_body(base_url: str, body: bytes, headers: Mapping[str, str] | None = None) -> Reply:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return send("POST", f"{base_url}/daily-totals", body, all_headers)


def put_faults(base_url: str, faults: Mapping[str, Any]) -> Reply:
    headers = {"Content-Type": "application/json"}
    return send("PUT", f"{base_url}/faults", orjson.dumps(faults), headers)


def list_events(base_url: str, query: str = "") -> list[dict[str, Any]]:
    reply = send("GET", f"{base_url}/daily-totals{query}")
    assert reply.status == 200
    events: list[dict[str, Any]] = reply.json()
    return events


def get_stats(base_url: str) -> dict[str, int]:
    reply = send("GET", f"{base_url}/stats")
    assert reply.status == 200
    stats: dict[str, int] = reply.json()
    return stats


def reset_mock(base_url: str) -> None:
    """Remove every fault, event and count that an earlier test left behind."""
    faults_reply = put_faults(base_url, {})
    clear_reply = send("DELETE", f"{base_url}/daily-totals")
    if faults_reply.status != 200 or clear_reply.status != 204:
        raise RuntimeError(
            f"reset of the mock at {base_url} failed: PUT /faults returned "
            f"{faults_reply.status}, DELETE /daily-totals returned {clear_reply.status}"
        )


def signed_headers(
    secret: str, body: bytes, timestamp: datetime | None = None, msg_id: str = "msg_1"
) -> dict[str, str]:
    """Return Standard Webhooks headers that sign body with secret at timestamp (default now)."""
    signed_at = timestamp if timestamp is not None else datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(signed_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, signed_at, body),
    }


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    """Check that reply is an RFC 9457 problem with status, and return its body."""
    assert reply.status == status
    assert reply.headers["Content-Type"] == PROBLEM_CONTENT_TYPE
    problem: dict[str, Any] = reply.json()
    assert problem["type"] == "about:blank"
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    return problem


def run_mock(tmp_path_factory: pytest.TempPathFactory, name: str, *options: str) -> Iterator[str]:
    """Start the mock as a child process, yield its base URL, and stop it by PID."""
    port = free_port()
    base_url = f"http://{LOOPBACK}:{port}"
    process = ManagedProcess(
        name,
        python_module("mock_external", "--host", LOOPBACK, "--port", str(port), *options),
        ready_url=f"{base_url}/healthz",
        log_dir=tmp_path_factory.mktemp(name),
        # An empty value turns off a secret that the developer's shell may export.
        env={"MOCK_EXTERNAL_SECRET": ""},
    )
    try:
        process.start()
        yield base_url
    finally:
        process.stop()


@pytest.fixture(scope="module")
def mock_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from run_mock(tmp_path_factory, "mock-external")


@pytest.fixture(scope="module")
def signed_mock_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from run_mock(tmp_path_factory, "mock-external-signed", "--secret", SECRET)


@pytest.fixture
def mock_url(mock_process: str) -> str:
    reset_mock(mock_process)
    return mock_process


@pytest.fixture
def signed_mock_url(signed_mock_process: str) -> str:
    reset_mock(signed_mock_process)
    return signed_mock_process


# --- HTTP: recording ----------------------------------------------------------------------


def test_healthz_reports_ok(mock_url: str) -> None:
    reply = send("GET", f"{mock_url}/healthz")

    assert reply.status == 200
    assert reply.json() == {"status": "ok"}


def test_post_event_records_new(mock_url: str) -> None:
    reply = post_event(mock_url, make_event())

    assert reply.status == 200
    assert reply.json() == {"status": "recorded"}
    assert list_events(mock_url) == [make_event()]


def test_post_event_reports_duplicate(mock_url: str) -> None:
    post_event(mock_url, make_event(total=3))

    reply = post_event(mock_url, make_event(total=4))

    assert reply.status == 200
    assert reply.json() == {"status": "duplicate"}
    assert list_events(mock_url) == [make_event(total=3)]


def test_list_events_filters_oldest_first(mock_url: str) -> None:
    post_event(mock_url, make_event("dt_4", account_id="acc_1", date="2025-09-18"))
    post_event(mock_url, make_event("dt_2", account_id="acc_2", date="2025-09-18"))
    post_event(mock_url, make_event("dt_3", account_id="acc_1", date="2025-09-19"))
    post_event(mock_url, make_event("dt_1", account_id="acc_1", date="2025-09-18"))

    def ids(query: str) -> list[str]:
        return [event["event_id"] for event in list_events(mock_url, query)]

    assert ids("") == ["dt_4", "dt_2", "dt_3", "dt_1"]
    assert ids("?account_id=acc_1") == ["dt_4", "dt_3", "dt_1"]
    assert ids("?date=2025-09-18") == ["dt_4", "dt_2", "dt_1"]
    assert ids("?account_id=acc_1&date=2025-09-18") == ["dt_4", "dt_1"]
    assert ids("?account_id=&date=") == ["dt_4", "dt_2", "dt_3", "dt_1"]
    assert ids("?account_id=acc_9") == []


@pytest.mark.parametrize(
    ("body", "detail_part"),
    [
        pytest.param(b"{not json", "expected JSON", id="not-json"),
        pytest.param(b"[1, 2]", "expected a JSON object", id="array"),
        pytest.param(b'{"total": 3}', "event_id", id="missing-event-id"),
        pytest.param(b'{"event_id": ""}', "event_id", id="empty-event-id"),
        pytest.param(b'{"event_id": 7}', "event_id", id="integer-event-id"),
    ],
)
def test_post_event_rejects_invalid_body(mock_url: str, body: bytes, detail_part: str) -> None:
    reply = post_body(mock_url, body)

    problem = assert_problem(reply, 400)
    assert detail_part in problem["detail"]
    assert list_events(mock_url) == []


def test_stats_counts_each_outcome(mock_url: str) -> None:
    post_event(mock_url, make_event("dt_1"))
    post_event(mock_url, make_event("dt_2"))
    post_event(mock_url, make_event("dt_1"))
    put_faults(mock_url, {"status": 500})
    post_event(mock_url, make_event("dt_3"))

    assert get_stats(mock_url) == {"received": 3, "distinct": 2, "duplicates": 1, "rejected": 1}


def test_clear_empties_log_and_stats(mock_url: str) -> None:
    post_event(mock_url, make_event("dt_1"))
    post_event(mock_url, make_event("dt_1"))

    reply = send("DELETE", f"{mock_url}/daily-totals")

    assert reply.status == 204
    assert list_events(mock_url) == []
    assert get_stats(mock_url) == {"received": 0, "distinct": 0, "duplicates": 0, "rejected": 0}


# --- HTTP: faults -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
def test_fault_status_is_returned(mock_url: str, status: int) -> None:
    put_faults(mock_url, {"status": status})

    reply = post_event(mock_url, make_event())

    assert_problem(reply, status)
    assert list_events(mock_url) == []


@pytest.mark.parametrize("status", [429, 503])
def test_fault_status_sends_retry_after(mock_url: str, status: int) -> None:
    put_faults(mock_url, {"status": status, "retry_after_s": 7})

    reply = post_event(mock_url, make_event())

    assert reply.status == status
    assert reply.headers["Retry-After"] == "7"


def test_fault_500_omits_retry_after(mock_url: str) -> None:
    put_faults(mock_url, {"status": 500, "retry_after_s": 7})

    reply = post_event(mock_url, make_event())

    assert reply.status == 500
    assert reply.headers["Retry-After"] is None


def test_fault_rate_one_fails_every_post(mock_url: str) -> None:
    put_faults(mock_url, {"failure_rate": 1.0})

    statuses = [post_event(mock_url, make_event(f"dt_{n}")).status for n in range(5)]

    assert statuses == [500] * 5
    assert get_stats(mock_url) == {"received": 0, "distinct": 0, "duplicates": 0, "rejected": 5}


def test_fault_latency_delays_response(mock_url: str) -> None:
    put_faults(mock_url, {"latency_ms": LATENCY_MS})

    started = time.monotonic()
    reply = post_event(mock_url, make_event())
    elapsed_s = time.monotonic() - started

    assert reply.status == 200
    # Only a loose lower bound: a busy machine may add any amount of delay on top.
    assert elapsed_s >= 0.8 * LATENCY_MS / 1000


def test_fault_down_closes_connection(mock_url: str) -> None:
    put_faults(mock_url, {"down": True})

    with pytest.raises(ConnectionError):
        post_event(mock_url, make_event())

    assert list_events(mock_url) == []
    assert get_stats(mock_url)["rejected"] == 1


def test_faults_spare_control_endpoints(mock_url: str) -> None:
    put_faults(mock_url, {"down": True, "status": 500, "failure_rate": 1.0})

    for path in ["/healthz", "/stats", "/faults", "/daily-totals"]:
        reply = send("GET", f"{mock_url}{path}")
        assert reply.status == 200, path


def test_faults_get_returns_current(mock_url: str) -> None:
    put_faults(mock_url, {"status": 503, "retry_after_s": 5})

    reply = send("GET", f"{mock_url}/faults")

    assert reply.status == 200
    assert reply.json() == {
        "failure_rate": 0.0,
        "status": 503,
        "retry_after_s": 5,
        "latency_ms": 0,
        "down": False,
    }


def test_faults_put_replaces_whole_config(mock_url: str) -> None:
    put_faults(mock_url, {"status": 503, "retry_after_s": 5})

    reply = put_faults(mock_url, {"latency_ms": 10})

    assert reply.status == 200
    assert reply.json() == Faults(latency_ms=10).to_dict()
    assert send("GET", f"{mock_url}/faults").json() == Faults(latency_ms=10).to_dict()


@pytest.mark.parametrize(("field", "value"), INVALID_FAULT_SETTINGS)
def test_faults_put_rejects_invalid_value(mock_url: str, field: str, value: object) -> None:
    put_faults(mock_url, {"latency_ms": 10})

    reply = put_faults(mock_url, {field: value})

    problem = assert_problem(reply, 422)
    assert field in problem["detail"]
    assert send("GET", f"{mock_url}/faults").json() == Faults(latency_ms=10).to_dict()


def test_faults_put_rejects_unknown_field(mock_url: str) -> None:
    reply = put_faults(mock_url, {"colour": "red"})

    problem = assert_problem(reply, 422)
    assert "colour" in problem["detail"]


def test_faults_put_rejects_non_object(mock_url: str) -> None:
    body = orjson.dumps([{"status": 500}])

    reply = send("PUT", f"{mock_url}/faults", body, {"Content-Type": "application/json"})

    problem = assert_problem(reply, 422)
    assert "expected a JSON object" in problem["detail"]


def test_faults_put_rejects_invalid_json(mock_url: str) -> None:
    headers = {"Content-Type": "application/json"}

    reply = send("PUT", f"{mock_url}/faults", b"{status: 500", headers)

    problem = assert_problem(reply, 400)
    assert "expected JSON" in problem["detail"]


# --- HTTP: Standard Webhooks signature ----------------------------------------------------


def test_signature_valid_is_accepted(signed_mock_url: str) -> None:
    body = orjson.dumps(make_event())

    reply = post_body(signed_mock_url, body, signed_headers(SECRET, body))

    assert reply.status == 200
    assert reply.json() == {"status": "recorded"}
    assert list_events(signed_mock_url) == [make_event()]


def test_signature_tampered_body_is_rejected(signed_mock_url: str) -> None:
    body = orjson.dumps(make_event(total=3))
    tampered = orjson.dumps(make_event(total=300))

    reply = post_body(signed_mock_url, tampered, signed_headers(SECRET, body))

    assert_problem(reply, 401)
    assert list_events(signed_mock_url) == []


def test_signature_wrong_secret_is_rejected(signed_mock_url: str) -> None:
    body = orjson.dumps(make_event())

    reply = post_body(signed_mock_url, body, signed_headers(OTHER_SECRET, body))

    assert_problem(reply, 401)
    assert list_events(signed_mock_url) == []


def test_signature_stale_timestamp_is_rejected(signed_mock_url: str) -> None:
    body = orjson.dumps(make_event())
    signed_at = datetime.now(UTC) - STALE_AGE

    reply = post_body(signed_mock_url, body, signed_headers(SECRET, body, signed_at))

    problem = assert_problem(reply, 401)
    assert "too old" in problem["detail"]


@pytest.mark.parametrize(
    "missing",
    [
        pytest.param(("webhook-id", "webhook-timestamp", "webhook-signature"), id="all"),
        pytest.param(("webhook-id",), id="id"),
        pytest.param(("webhook-timestamp",), id="timestamp"),
        pytest.param(("webhook-signature",), id="signature"),
    ],
)
def test_signature_missing_headers_is_rejected(
    signed_mock_url: str, missing: tuple[str, ...]
) -> None:
    body = orjson.dumps(make_event())
    headers = signed_headers(SECRET, body)
    for name in missing:
        del headers[name]

    reply = post_body(signed_mock_url, body, headers)

    problem = assert_problem(reply, 401)
    assert "Missing required headers" in problem["detail"]
    assert list_events(signed_mock_url) == []


def test_signature_rejections_are_counted(signed_mock_url: str) -> None:
    body = orjson.dumps(make_event())

    post_body(signed_mock_url, body)

    assert get_stats(signed_mock_url)["rejected"] == 1
