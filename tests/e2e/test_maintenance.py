"""`inv maintenance.on/off` end to end: the real CLI over the test bed's sshd, the fake app
deployed behind the Traefik stand-in, load through it the whole time. While the page is on,
every request gets the page's 503 with `Retry-After`; no request fails otherwise; a deploy
is refused unless `--during-maintenance`, and then goes out behind the page."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Iterator

import pytest

from tests.deploy.stack import APP, DOMAIN, Stack, output
from tests.support.docker import docker
from tests.support.front import Front
from tests.support.images import pinned_app_image
from tests.support.load import LoadGenerator, Result

pytestmark = pytest.mark.e2e

THROTTLE = 1.0
RETRY_AFTER = "120"
MESSAGE = "Back at 14:00 UTC <with care>"


@pytest.fixture
def site(stack: Stack, make_front: Callable[..., Front]) -> Iterator[tuple[Stack, Front]]:
    """v1 (2 replicas) deployed behind a started front, with the test bed's page image."""
    assert stack.inv("setup").returncode == 0
    front = make_front(project=stack.project, throttle=THROTTLE, network=stack.network)
    stack.write_env(overrides={
        "maintenance": {"image": pinned_app_image("maintenance"), "command": [], "port": 8000,
                        "ready_timeout": 30, "retry_after": int(RETRY_AFTER)},
        "deploy": {"traefik_throttle": THROTTLE, "drain_margin": 0.5, "smoke": {
            "urls": [f"{front.url}/health"], "host_header": DOMAIN}}})
    proc = stack.inv("deploy", "--yes")
    assert proc.returncode == 0, output(proc)
    front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=30)
    try:
        yield stack, front
    finally:
        docker("rm", "-f", f"{stack.project}-maintenance", check=False)


def get(front: Front, path: str = "/version") -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": DOMAIN})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
    finally:
        conn.close()


def page(stack: Stack) -> list[str]:
    return docker("ps", "-aq", "--filter", f"name=^{stack.project}-maintenance").split()


def only_app_or_page(results: list[Result]) -> tuple[int, int]:
    """Every answer is the app's 200 or the page's 503; returns (200s, 503s)."""
    bad = [r for r in results if r.error or r.status not in (200, 503)
           or (r.status == 503 and "Back at 14:00 UTC" not in r.body)]
    assert not bad, "\n".join(map(str, bad[:10]))
    pages = sum(1 for r in results if r.status == 503)
    return len(results) - pages, pages


def test_maintenance_on_deploy_behind_the_page_and_off_under_load(
        site: tuple[Stack, Front]) -> None:
    stack, front = site
    started = time.monotonic()
    with LoadGenerator(f"{front.url}/version", host=DOMAIN, rate=20, max_seconds=240) as load:
        proc = stack.inv("maintenance.on", f"--message={MESSAGE}")
        assert proc.returncode == 0, output(proc)
        on_at = load.now()
        status, headers, body = get(front, "/people?page=2")
        assert status == 503 and headers["retry-after"] == RETRY_AFTER
        assert "Back at 14:00 UTC &lt;with care&gt;" in body and "Down for maintenance" in body
        web = stack.containers()
        assert len(web) == 2 and all(c["health"] == "healthy" for c in web)

        proc = stack.inv("status")
        assert proc.returncode == 0 and "maintenance: ON since" in proc.stdout, output(proc)
        assert "says: Back at 14:00 UTC <with care>" in proc.stdout

        refused = stack.inv("deploy", "--yes", "--version=v2")
        assert refused.returncode == 1
        assert "is in maintenance (`inv maintenance.on`)" in refused.stderr
        assert "--during-maintenance" in refused.stderr and "Traceback" not in output(refused)
        assert stack.images() == [f"{APP}:v1", f"{APP}:v1"]

        proc = stack.inv("deploy", "--yes", "--version=v2", "--during-maintenance")
        assert proc.returncode == 0, output(proc)
        assert "smoke test" in proc.stdout and stack.all_serving(f"{APP}:v2")
        assert get(front)[0] == 503

        again = stack.inv("maintenance.on", f"--message={MESSAGE}")
        assert again.returncode == 0 and "already up" in again.stdout, output(again)

        off_at = load.now()
        proc = stack.inv("maintenance.off")
        assert proc.returncode == 0, output(proc)
        back_at = load.now()
        status, _, body = get(front)
        assert (status, body) == (200, "v2")
        time.sleep(1)
    assert not page(stack)
    during = load.results(on_at, off_at)
    ok, pages = only_app_or_page(load.results())
    assert pages > 0 and ok > 0
    assert all(r.status == 503 for r in during), load.summary(during)
    assert load.versions_seen(back_at) == {"v2"}
    print(f"maintenance under load: {len(load.results())} requests in "
          f"{time.monotonic() - started:.0f}s, {pages} pages, {ok} app answers, 0 failed")
    actions = [(a["action"], a["result"]) for a in stack.audit()]
    assert actions[-5:] == [("maintenance.on", "success"), ("deploy", "cancelled"),
                            ("deploy", "success"), ("maintenance.on", "no-change"),
                            ("maintenance.off", "success")]
    assert not stack.locked()


def test_maintenance_refusals_change_nothing(site: tuple[Stack, Front]) -> None:
    stack, front = site
    proc = stack.inv("maintenance.on", "--message=")
    assert proc.returncode == 1 and proc.stderr.startswith("error: --message: expected one line")

    (stack.app_dir / "lock").mkdir()
    proc = stack.inv("maintenance.on")
    assert proc.returncode == 75 and "is locked by" in proc.stderr, output(proc)
    (stack.app_dir / "lock").rmdir()
    assert not page(stack) and get(front)[0] == 200

    assert stack.inv("maintenance.on").returncode == 0
    for c in stack.containers():
        docker("stop", "-t", "1", c["id"])
    proc = stack.inv("maintenance.off")
    assert proc.returncode == 1, output(proc)
    assert "no healthy web container runs on" in proc.stderr
    assert "so it stays up" in proc.stderr and "Traceback" not in output(proc)
    assert page(stack) and get(front)[0] == 503 and not stack.locked()
    assert stack.audit()[-1]["action"] == "maintenance.off"
    assert stack.audit()[-1]["result"] == "failed"
