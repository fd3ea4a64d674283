"""The smoke test after a roll: GET each public URL's health endpoint from where the task
runs, through the real edge, the way users reach the app.

URLs are `https://<domain><health_path>` for each domain, or `deploy.smoke.urls`
(with `deploy.smoke.host_header` when they point at the proxy by address). A round checks
every URL, every `interval` seconds; the test passes after `checks` good rounds and fails
at the `failures`-th failed round. It lasts at most `window` seconds: still short of good
rounds then, it fails too.

Without a public URL (Traefik disabled and no `deploy.smoke.urls`, as in `local`), the same
rounds run on the host (`scripts/smoke.sh`, one round trip) against each web container at
its address on the Docker network; so do they while the site is in maintenance (`direct`),
where every public URL answers the page. On a swarm (tasks on an overlay the host is not on)
the host test is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from fabfile.config import Config
from fabfile.config.secrets import redact
from fabfile.remote import Step, Transport

from . import rollout, scripts


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


def host_step(cfg: Config) -> Step:
    """The smoke test run on the host against the web containers' network addresses."""
    smoke = cfg.deploy.smoke
    return scripts.step(
        "smoke test on the Docker network", "smoke", cfg.project, cfg.app.name,
        cfg.deploy.network, str(cfg.app.port), cfg.app.health_path, str(smoke.failures),
        str(smoke.window), f"{smoke.interval:g}", str(smoke.checks), "5",
        timeout=smoke.window + 60, check=False)


def parse_host(output: str) -> Result:
    """`smoke.sh`'s markers as a Result."""
    m = rollout.markers(output)
    verdict = (m.get("smoke") or ["fail 0 0 0"])[-1].split()
    good, rounds, seconds = ([*verdict[1:], "0", "0", "0"])[:3]
    failures = [r.removeprefix("fail ") for r in m.get("round", []) if r.startswith("fail")]
    ok = verdict[0] == "ok"
    if not ok and not failures:
        failures = ["the smoke test did not run on the host: " + (output.strip()[-200:]
                                                                  or "no output")]
    return Result(ok=ok, rounds=int(rounds), good=int(good), seconds=float(seconds),
                  failures=failures)


def run(cfg: Config, *, transport: Transport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        client: httpx.Client | None = None, direct: bool = False) -> Result:
    """Run the smoke test; `sleep`, `clock` and `client` are seams for tests. Without a
    public URL, or `direct`, on the host through `transport` (skipped when there is none)."""
    smoke = cfg.deploy.smoke
    found = () if direct else targets(cfg)
    if not found and transport is not None and cfg.deploy.engine != "swarm":
        return parse_host(transport.probe(host_step(cfg)).stdout)
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
