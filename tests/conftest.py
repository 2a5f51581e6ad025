"""Session-wide real components: one Valkey, one mock receiver and one service.

Tests share them and stay apart by using their own account ids (see `account`).
Tests that restart or break a component start their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from counter.embedded import EmbeddedValkey
from tests.support.client import request
from tests.support.processes import ManagedProcess
from tests.support.stack import mock_process, service_process, start_valkey, url_of


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    server = start_valkey(tmp_path_factory.mktemp("valkey"))
    yield server
    server.stop()


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[EmbeddedValkey]:
    """Give a test a Valkey of its own, for tests that kill it or need empty keys."""
    server = start_valkey(tmp_path / "own-valkey")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mock(log_dir: Path) -> Iterator[ManagedProcess]:
    process = mock_process(log_dir)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def mock_url(mock: ManagedProcess) -> str:
    return url_of(mock)


@pytest.fixture
def mock_faults(mock_url: str) -> Iterator[str]:
    """Give a test the URL of the shared mock's fault control; reset the faults afterwards."""
    yield f"{mock_url}/faults"
    request("PUT", f"{mock_url}/faults", json={})


@pytest.fixture(scope="session")
def service(log_dir: Path, valkey: EmbeddedValkey, mock_url: str) -> Iterator[ManagedProcess]:
    process = service_process(log_dir, valkey.url, f"{mock_url}/daily-totals", name="service")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def service_url(service: ManagedProcess) -> str:
    return url_of(service)


@pytest.fixture
def account() -> str:
    """Return an account id no other test uses."""
    return f"acc-{uuid.uuid4().hex[:12]}"
