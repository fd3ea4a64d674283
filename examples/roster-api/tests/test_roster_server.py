"""The real server process (`python -m roster_api`, uvicorn): graceful shutdown on SIGTERM with
a slow request in flight, the error for a bad environment, and Sentry when SENTRY_DSN is set."""

from __future__ import annotations

import gzip
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from roster_testing import sqlite_url

from roster_api.revisions import APP_ROOT

STOPPED_BY_SIGTERM = (0, -signal.SIGTERM)
"""uvicorn re-raises the signal once its graceful shutdown is done (Docker shows exit 143)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, db: Path, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.log = tmp_path / f"server-{self.port}.log"
        environ = {**os.environ, "PYTHONPATH": str(APP_ROOT), "DATABASE_URL": sqlite_url(db),
                   "PORT": str(self.port), "DRAIN_FILE": str(tmp_path / "drain"),
                   "ROSTER_DEBUG_ROUTES": "1", "WEB_CONCURRENCY": "1", **env}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "roster_api"], env=environ,
                                            stdout=log, stderr=subprocess.STDOUT, cwd=APP_ROOT)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"not healthy after {timeout} s:\n{self.output()}")

    def wait_sleeping(self, timeout: float = 10.0) -> None:
        """Until a /debug/sleep request is being served."""
        deadline = time.monotonic() + timeout
        while httpx.get(f"{self.url}/debug/sleeping", timeout=2).json()["sleeping"] < 1:
            assert time.monotonic() < deadline, "the slow request never arrived"
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def start_server(db: Path, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory: a healthy server on `db` with these extra environment variables."""
    started: list[Server] = []

    def start(**env: str) -> Server:
        server = Server(db, tmp_path, **env)
        started.append(server)
        server.wait_healthy()
        return server

    yield start
    for server in started:
        server.stop()


@contextmanager
def sigterm_while_sleeping(server: Server, seconds: float) -> Iterator[Future[httpx.Response]]:
    """Send SIGTERM while a `/debug/sleep?seconds=N` request is in flight; yields it."""
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.get, f"{server.url}/debug/sleep?seconds={seconds:g}",
                           timeout=seconds + 30)
        server.wait_sleeping()
        server.process.send_signal(signal.SIGTERM)
        yield slow


def test_sigterm_finishes_the_request_in_flight_and_refuses_new_ones(
        start_server: Callable[..., Server]) -> None:
    server = start_server()
    stopped_at = time.monotonic()
    with sigterm_while_sleeping(server, 2) as slow:
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/health", timeout=2)
        response = slow.result()
    assert (response.status_code, response.json()) == (200, {"slept": 2.0})
    assert server.process.wait(timeout=30) in STOPPED_BY_SIGTERM
    assert time.monotonic() - stopped_at < 10, "shutdown waited for more than the request"
    assert "Shutting down" in server.output()


def test_the_grace_period_bounds_the_wait(start_server: Callable[..., Server]) -> None:
    server = start_server(SHUTDOWN_TIMEOUT="1")
    stopped_at = time.monotonic()
    with sigterm_while_sleeping(server, 30) as slow:
        assert server.process.wait(timeout=20) in STOPPED_BY_SIGTERM
        assert time.monotonic() - stopped_at < 8
        with pytest.raises(httpx.HTTPError):
            slow.result().raise_for_status()
    assert "timeout graceful shutdown exceeded" in server.output()


def test_a_bad_environment_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(APP_ROOT), "DATABASE_URL": "mysql://x@y/z",
           "DB_POOL_MAX_SIZE": "many"}
    proc = subprocess.run([sys.executable, "-m", "roster_api"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: invalid environment:")
    assert "DATABASE_URL: unsupported scheme 'mysql'" in proc.stderr
    assert "DB_POOL_MAX_SIZE: expected an integer >= 1, got 'many'" in proc.stderr
    assert "Traceback" not in proc.stderr


class _Ingest(http.server.BaseHTTPRequestHandler):
    """Sentry's ingest endpoint, enough to receive envelopes."""

    received: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_errors_go_to_sentry_when_sentry_dsn_is_set(
        start_server: Callable[..., Server]) -> None:
    received: list[bytes] = []
    handler = type("Ingest", (_Ingest,), {"received": received})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as ingest:
        threading.Thread(target=ingest.serve_forever, daemon=True).start()
        dsn = f"http://publickey@127.0.0.1:{ingest.server_address[1]}/42"
        server = start_server(SENTRY_DSN=dsn, APP_VERSION="v9")
        assert httpx.get(f"{server.url}/debug/error", timeout=5).status_code == 500
        deadline = time.monotonic() + 15
        while not any(b"raised on purpose by /debug/error" in body for body in received):
            assert time.monotonic() < deadline, f"nothing reached Sentry: {received!r}"
            time.sleep(0.1)
        ingest.shutdown()
    event = next(body for body in received if b"raised on purpose" in body)
    assert b'"release":"v9"' in event.replace(b" ", b"")
