"""Start the real servers a test needs as child processes, and stop them by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from counter.embedded import LOOPBACK, free_port

READY_TIMEOUT_S = 30.0
READY_POLL_S = 0.05
STOP_TIMEOUT_S = 15.0

__all__ = ["LOOPBACK", "ManagedProcess", "free_port", "http_ok", "python_module"]

# Loopback servers only: never route a test request through a proxy from the environment.
DIRECT_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_ok(url: str) -> bool:
    try:
        with DIRECT_OPENER.open(url, timeout=1) as response:
            return 200 <= response.status < 300
    except (OSError, urllib.error.URLError):
        return False


class ManagedProcess:
    """A child process, started and stopped by the test session.

    It is ready when `ready_url` responds with 2xx or, for a process without HTTP, when its
    output contains `ready_text`. Output goes to a log file, so a failing test can point at it.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        ready_url: str,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        ready_text: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.ready_url = ready_url
        self.ready_text = ready_text
        self.log_path = log_dir / f"{name}.log"
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int:
        if self.process is None:
            raise LookupError(f"{self.name} is not running")
        return self.process.pid

    def start(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env
        )
        log.close()
        try:
            self.wait_ready()
        except TimeoutError:
            self.stop()  # still running but never ready: do not leave it behind
            raise

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
                )
            if self._is_ready():
                return
            time.sleep(READY_POLL_S)
        raise TimeoutError(f"{self.name} was not ready at {self.ready_url}; see {self.log_path}")

    def _is_ready(self) -> bool:
        if self.ready_text is None:
            return http_ok(self.ready_url)
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return self.ready_text.encode() in log.read()

    def output(self) -> str:
        """Return everything the process wrote to its log, across restarts."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        """Send SIGTERM and wait; escalate to SIGKILL after STOP_TIMEOUT_S."""
        return self._end(signal.SIGTERM)

    def kill(self) -> int | None:
        """Send SIGKILL, as a crash would, and reap the process."""
        return self._end(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _end(self, signum: signal.Signals) -> int | None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signum)
        try:
            return process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def python_module(module: str, *args: str) -> list[str]:
    """Build the argv that runs `python -m module args` with this interpreter."""
    return [sys.executable, "-m", module, *args]
