"""The facts report parser and the readiness checks: pure, from report text."""

from __future__ import annotations

import base64
import json

import pytest

from fabfile.deploy.facts import docker_problem, parse, version_tuple
from fabfile.errors import UserError

REPORT = """\
Welcome to the host (a motd line before the report is ignored)
@facts 1
docker 20.10.24+dfsg1
compose 2.26.1-4
app_dir present
disk_free_kb 51200
lock held
holder {holder}
network present
release 20240101T000000Z-v1 live
release 20240102T000000Z-v2 staged
release_db 20240101T000000Z-v1 sqlite
current 20240101T000000Z-v1
file 0123abcd 644 compose.yml
content {compose} compose.yml
file 4567ef01 600 app.env
envline APP_VERSION 9f9f app.env
envline DATABASE_URL 8e8e app.env
container aaaa1111 web False running healthy T0 /p-web-1 app:v1 {r1}/compose.yml
container bbbb2222 web False running unhealthy T0 /p-web-2 app:v1 {r1}/compose.yml
container cccc3333 web True exited none T0 /p-web-run-1 app:v2 {r2}/compose.yml
container dddd4444 db False running healthy T0 /p-db-1 postgres:15 /srv/p x/releases/x/compose.yml
image present app:v1
image missing app:v2
audit {audit}
@end
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def sample() -> str:
    return REPORT.format(
        holder=b64(json.dumps({"who": "alice@laptop", "pid": 42})),
        compose=b64("name: p\nservices: {}\n"),
        audit=b64(json.dumps({"result": "success", "version": "v1"})),
        r1="/srv/p/releases/20240101T000000Z-v1", r2="/srv/p/releases/20240102T000000Z-v2")


def test_parses_every_section() -> None:
    f = parse(sample())
    assert (f.docker, f.compose, f.app_dir, f.disk_free_kb) == ("20.10.24+dfsg1", "2.26.1-4",
                                                              True, 51200)
    assert f.lock == "held" and f.holder == {"who": "alice@laptop", "pid": 42}
    assert f.network and f.current == "20240101T000000Z-v1"
    assert [(r.id, r.live) for r in f.releases] == [("20240101T000000Z-v1", True),
                                                    ("20240102T000000Z-v2", False)]
    assert f.files["compose.yml"].mode == 0o644 and f.files["app.env"].mode == 0o600
    assert f.contents == {"compose.yml": "name: p\nservices: {}\n"}
    assert f.env_lines == {"app.env": {"APP_VERSION": "9f9f", "DATABASE_URL": "8e8e"}}
    assert f.images == {"app:v1": True, "app:v2": False}
    assert f.last_audit == {"result": "success", "version": "v1"}
    assert f.sqlite_releases == {"20240101T000000Z-v1"}


def test_containers_know_their_release_and_whether_they_serve() -> None:
    f = parse(sample())
    web = f.service("web")
    assert [c.short_id for c in web] == ["aaaa1111", "bbbb2222"]
    assert [c.serving for c in web] == [True, False]
    assert web[0].release == "20240101T000000Z-v1" and web[0].name == "p-web-1"
    db = f.service("db")[0]
    assert db.config_file == "/srv/p x/releases/x/compose.yml"


def test_a_cut_short_report_is_an_error_with_its_tail() -> None:
    with pytest.raises(UserError, match=r"complete facts report \(last lines: .*sh: boom"):
        parse("@facts 1\ndocker 20.10\nsh: boom")


def test_missing_app_dir_stops_the_report() -> None:
    f = parse("@facts 1\ndocker 24.0.7\ncompose 2.24.0\napp_dir missing\n@end\n")
    assert not f.app_dir and f.lock == "unknown" and f.current is None


@pytest.mark.parametrize(("text", "expected"), [
    ("20.10.24+dfsg1", (20, 10, 24)), ("v2.26.1-4", (2, 26, 1)), ("2.20", (2, 20)), ("", ()),
    ("garbage", ())])
def test_version_tuple(text: str, expected: tuple[int, ...]) -> None:
    assert version_tuple(text) == expected


@pytest.mark.parametrize(("lines", "fragment"), [
    ("docker missing", "Docker is not installed on h: install Docker Engine"),
    ("docker 19.03.5\ncompose 2.26.0", "Docker Engine 19.03.5 on h is too old (need 20.10"),
    ("docker 24.0.7\ncompose missing", "Docker Compose v2 (`docker compose`) is missing on h"),
    ("docker 24.0.7\ncompose 1.29.2", "Docker Compose 1.29.2 on h is too old (need 2.20"),
    ("docker 24.0.7\ncompose 2.12.0", "Docker Compose 2.12.0 on h is too old"),
    (f"docker_error {b64('permission denied while trying to connect to the Docker daemon')}",
     "user deploy on h may not use Docker"),
    (f"docker_error {b64('Cannot connect to the Docker daemon at unix:///var/run/docker.sock')}",
     "the Docker daemon on h is not running"),
])
def test_docker_problems_say_what_to_do(lines: str, fragment: str) -> None:
    f = parse(f"@facts 1\n{lines}\napp_dir missing\n@end\n")
    problem = docker_problem(f, "h", "deploy")
    assert problem is not None and fragment in problem


def test_recent_docker_and_compose_are_fine() -> None:
    f = parse("@facts 1\ndocker 20.10.24+dfsg1\ncompose 2.26.1-4\napp_dir missing\n@end\n")
    assert docker_problem(f, "h", "deploy") is None
