"""A bounded, loopback-only load generator for zero-downtime tests and benchmarks.

`LoadGenerator` sends requests at a fixed rate to a URL on 127.0.0.1 with a chosen Host
header, from a background scheduler thread and a small pool of workers, and records every
result. It stops by itself after `max_seconds` or `max_requests`, whichever comes first, or
on `stop()`. Each request opens its own connection (`Connection: close`), so a result never
depends on a pooled connection the server dropped in between: a failure is the front's or
the app's, never the client's.

A request is scheduled every `1/rate` seconds whatever the earlier ones are doing; when all
workers are busy it waits for one, and its result shows the delay (`started - scheduled`).
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Self

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_RATE = 200.0


@dataclass(frozen=True)
class Result:
    """One request: times are seconds since the generator started."""

    index: int
    scheduled: float
    started: float
    elapsed: float
    status: int | None
    body: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def __str__(self) -> str:
        outcome = self.status if self.error is None else self.error
        return f"#{self.index} at {self.started:.2f}s ({self.elapsed * 1000:.0f} ms): {outcome}"


class LoadGenerator:
    """Fixed-rate requests to `url` with `Host: host`, bounded in time and count.

    Use as a context manager (`start()` on enter, `stop()` on exit) or call them directly;
    `wait()` blocks until it has stopped by itself. Results are available at any time.
    """

    def __init__(
        self,
        url: str,
        *,
        host: str,
        path: str | None = None,
        rate: float = 25.0,
        max_seconds: float = 600.0,
        max_requests: int | None = None,
        timeout: float = 10.0,
        concurrency: int = 32,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or parsed.hostname not in LOOPBACK_HOSTS:
            raise ValueError(f"load goes to http://127.0.0.1 only, not {url!r}")
        if not 0 < rate <= MAX_RATE:
            raise ValueError(f"rate must be in (0, {MAX_RATE}] requests/s, not {rate}")
        if max_seconds <= 0 or (max_requests is not None and max_requests <= 0):
            raise ValueError("max_seconds and max_requests must be positive")
        self.address: tuple[str, int] = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.host = host
        self.path = path or parsed.path or "/version"
        self.rate = rate
        self.max_seconds = max_seconds
        self.max_requests = max_requests or int(max_seconds * rate) + 1
        self.timeout = timeout
        self.concurrency = concurrency
        self._results: list[Result] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def start(self) -> Self:
        """Start sending (idempotent); returns self."""
        if self._thread is None:
            self._t0 = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="load", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop scheduling requests and wait for those in flight (at most `timeout`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the generator has stopped by itself; False on timeout."""
        return self._done.wait(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def started_at(self) -> float:
        """`time.monotonic()` at `start()`: the results' +0."""
        return self._t0

    def now(self) -> float:
        """Seconds since `start()`, on the clock the results use."""
        return time.monotonic() - self._t0

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    def results(self, since: float = 0.0, until: float | None = None) -> list[Result]:
        """Results of the requests started in [since, until), in start order."""
        with self._lock:
            results = list(self._results)
        return sorted(
            (r for r in results if r.started >= since and (until is None or r.started < until)),
            key=lambda r: (r.started, r.index),
        )

    def failures(self, since: float = 0.0, until: float | None = None) -> list[Result]:
        """The requests that got no 2xx answer (an error status or an exception)."""
        return [r for r in self.results(since, until) if not r.ok]

    def versions_seen(self, since: float = 0.0, until: float | None = None) -> set[str]:
        """Distinct bodies of the successful answers (the app's version on `/version`)."""
        return {r.body.strip() for r in self.results(since, until) if r.ok}

    def summary(self, results: Iterable[Result] | None = None) -> str:
        """Counts by outcome and the first failures, for assertion messages."""
        results = list(self.results() if results is None else results)
        outcomes = Counter(str(r.status) if r.error is None else r.error for r in results)
        failed = [r for r in results if not r.ok]
        lines = [f"{len(results)} requests, {len(failed)} failed: {dict(outcomes)}"]
        lines += [f"  {r}" for r in failed[:10]]
        return "\n".join(lines)

    def _run(self) -> None:
        interval = 1.0 / self.rate
        deadline = self._t0 + self.max_seconds
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="load") as pool:
                for index in range(self.max_requests):
                    due = self._t0 + index * interval
                    if due >= deadline or self._stop.wait(max(0.0, due - time.monotonic())):
                        break
                    pool.submit(self._one, index, due - self._t0)
                pool.shutdown(wait=True, cancel_futures=self._stop.is_set())
        finally:
            self._done.set()

    def _one(self, index: int, scheduled: float) -> None:
        started = time.monotonic()
        status: int | None = None
        body = ""
        error: str | None = None
        conn = http.client.HTTPConnection(*self.address, timeout=self.timeout)
        try:
            conn.request("GET", self.path, headers={"Host": self.host, "Connection": "close"})
            resp = conn.getresponse()
            status = resp.status
            body = resp.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            error = type(exc).__name__
        finally:
            conn.close()
        result = Result(index, scheduled, started - self._t0, time.monotonic() - started,
                        status, body, error)
        with self._lock:
            self._results.append(result)
