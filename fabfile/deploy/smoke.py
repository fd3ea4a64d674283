"""The smoke test after a roll: GET each public URL's health endpoint from where the task
runs, through the real edge, the way users reach the app.

URLs are `https://<domain><health_path>` for each domain, or `deploy.smoke.urls`
(with `deploy.smoke.host_header` when they point at the proxy by address). A round checks
every URL, every `interval` seconds; the test passes after `checks` good rounds and fails
at the `failures`-th failed round. It lasts at most `window` seconds: still short of good
rounds then, it fails too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from fabfile.config import Config
from fabfile.config.secrets import redact


@dataclass(frozen=True)
class Target:
    url: str
    host_header: str | None = None

    def __str__(self) -> str:
        return f"{self.url} (Host: {self.host_header})" if self.host_header else self.url


@dataclass
class Result:
    ok: bool
    rounds: int = 0
    good: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    skipped: str = ""


def targets(cfg: Config) -> tuple[Target, ...]:
    smoke = cfg.deploy.smoke
    if smoke.urls:
        return tuple(Target(u, smoke.host_header) for u in smoke.urls)
    if not cfg.traefik.enabled:
        return ()
    return tuple(Target(f"https://{d}{cfg.app.health_path}") for d in cfg.domains)


def check(client: httpx.Client, target: Target) -> str | None:
    """None when the endpoint answers 2xx, else why not."""
    headers = {"Host": target.host_header} if target.host_header else {}
    try:
        response = client.get(target.url, headers=headers)
    except httpx.HTTPError as exc:
        return f"GET {target}: {type(exc).__name__}: {redact(str(exc))[:200]}"
    if 200 <= response.status_code < 300:
        return None
    return f"GET {target}: HTTP {response.status_code}"


def run(cfg: Config, *, sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        client: httpx.Client | None = None) -> Result:
    """Run the smoke test; `sleep`, `clock` and `client` are seams for tests."""
    smoke = cfg.deploy.smoke
    found = targets(cfg)
    if not found:
        return Result(ok=True, skipped="no public URL to check (traefik disabled and "
                                       "deploy.smoke.urls empty)")
    own = client is None
    http = client or httpx.Client(verify=smoke.verify_tls, timeout=5.0, follow_redirects=False)
    start = clock()
    result = Result(ok=False)
    failed_rounds = 0
    try:
        while True:
            problems = [p for t in found if (p := check(http, t))]
            now = clock()
            result.rounds += 1
            if problems:
                failed_rounds += 1
                result.failures.extend(problems)
                if failed_rounds >= smoke.failures:
                    break
            else:
                result.good += 1
                if result.good >= smoke.checks:
                    result.ok = True
                    break
            if now - start >= smoke.window:
                break
            sleep(smoke.interval)
    finally:
        if own:
            http.close()
    result.seconds = clock() - start
    return result
