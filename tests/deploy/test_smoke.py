"""The smoke test's counting rules, against httpx's MockTransport (no network)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx

from fabfile.config import Config
from fabfile.deploy import smoke
from tests.deploy.factgen import config


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def cfg_with(tmp: Path, **smoke_opts: object) -> Config:
    return config("unit", tmp, {"deploy": {"smoke": {
        "urls": ["http://127.0.0.1:9/health"], "host_header": "roster.test", "interval": 1.0,
        **smoke_opts}}})


def client(statuses: Iterator[int], seen: list[httpx.Request]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(statuses))
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_passes_after_enough_good_rounds_with_the_host_header(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    clock = Clock()
    result = smoke.run(cfg_with(tmp_path, checks=3), sleep=clock.sleep, clock=clock,
                       client=client(iter([200] * 10), seen))
    assert result.ok and result.good == 3 and result.rounds == 3
    assert {r.headers["host"] for r in seen} == {"roster.test"}


def test_fails_at_the_third_failure_within_the_window(tmp_path: Path) -> None:
    clock = Clock()
    result = smoke.run(cfg_with(tmp_path, checks=5, failures=3, window=120),
                       sleep=clock.sleep, clock=clock,
                       client=client(iter([503, 200, 503, 503] + [200] * 10), []))
    assert not result.ok and result.rounds == 4 and len(result.failures) == 3
    assert "HTTP 503" in result.failures[-1]


def test_flapping_that_outlasts_the_window_fails(tmp_path: Path) -> None:
    clock = Clock()
    result = smoke.run(cfg_with(tmp_path, checks=4, failures=3, window=5, interval=1.0),
                       sleep=clock.sleep, clock=clock,
                       client=client(iter([503, 200, 200, 503, 200] * 3), []))
    assert not result.ok and result.good == 3 and result.seconds >= 5
    clock = Clock()
    result = smoke.run(cfg_with(tmp_path, checks=4, failures=3, window=60),
                       sleep=clock.sleep, clock=clock,
                       client=client(iter([503, 200, 200, 503, 200, 200]), []))
    assert result.ok and len(result.failures) == 2


def test_connection_errors_count_as_failures(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)
    clock = Clock()
    result = smoke.run(cfg_with(tmp_path), sleep=clock.sleep, clock=clock,
                       client=httpx.Client(transport=httpx.MockTransport(refuse)))
    assert not result.ok and "ConnectError" in result.failures[0]


def test_default_targets_are_each_domains_health_endpoint(tmp_path: Path) -> None:
    cfg = config("edge", tmp_path)
    assert [str(t) for t in smoke.targets(cfg)] == ["https://roster.example.com/health"]
    unit = config("unit", tmp_path)
    assert smoke.targets(unit) == ()
    assert smoke.run(unit).skipped
    off = dataclasses.replace(cfg, traefik=dataclasses.replace(cfg.traefik, enabled=False))
    assert smoke.targets(off) == ()


def test_without_a_public_url_the_rounds_run_on_the_host(tmp_path: Path) -> None:
    cfg = config("unit", tmp_path)
    assert smoke.targets(cfg) == ()
    step = smoke.host_step(cfg)
    assert step.argv[4:] == ("unit", "web", "unit-net", "8000", "/health", "3", "120", "2",
                             "5", "5")
    ok = smoke.parse_host("@round fail GET x: HTTP 503\n@round ok\n@round ok\n@smoke ok 2 3 1.50\n")
    assert (ok.ok, ok.good, ok.rounds, ok.seconds) == (True, 2, 3, 1.5)
    assert ok.failures == ["GET x: HTTP 503"]
    bad = smoke.parse_host("@round fail GET a: HTTP 500\n@smoke fail 0 1 0.20\n")
    assert not bad.ok and bad.failures == ["GET a: HTTP 500"]
    broken = smoke.parse_host("sh: docker: not found\n")
    assert not broken.ok and "did not run on the host: sh: docker: not found" in broken.failures[0]
