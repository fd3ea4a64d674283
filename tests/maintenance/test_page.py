"""The operator's maintenance page as data: its routers outrank the web routers (and the
Traefik stand-in ranks them the way Traefik does), its spec tells an identical page from
another, the facts report reads it, status shows it, deploy refuses while it is on."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from fabfile.config import Config, load_config
from fabfile.cutover import steps
from fabfile.deploy import facts
from fabfile.deploy.show import maintenance_line
from fabfile.errors import UserError
from fabfile.maintenance.run import check_message
from tests.helpers import DUMMY_SECRETS, env_tree
from tests.support.front import build_table

MANUAL = steps.Manual(by="alice@laptop", since="2024-05-01T10:00:00Z", message="Back <soon>")


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return load_config("prod", root=env_tree(tmp_path), environ=DUMMY_SECRETS)


def labels(argv: tuple[str, ...]) -> dict[str, str]:
    return dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--label")


def test_the_operators_page_outranks_the_web_routers_and_says_who(cfg: Config) -> None:
    argv = steps.maintenance_run_argv(cfg, MANUAL)
    found = labels(argv)
    for i, domain in enumerate(cfg.domains, start=1):
        assert found[f"traefik.http.routers.maintenance-manual-{i}.rule"] == f"Host(`{domain}`)"
        assert found[f"traefik.http.routers.maintenance-manual-{i}.priority"] == "1000000"
    assert not any(k.startswith("traefik.http.routers.maintenance-1") for k in found)
    assert found["shipyard.maintenance"] == "manual"
    assert found["shipyard.maintenance.by"] == "alice@laptop"
    envs = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-e")
    assert envs["MAINTENANCE_RETRY_AFTER"] == "300"
    assert "Back &lt;soon&gt;" in envs["MAINTENANCE_PAGE"]


def test_the_spec_changes_with_the_message_not_with_who_or_when(cfg: Config) -> None:
    spec = steps.manual_spec(steps.maintenance_run_argv(cfg, MANUAL))
    later = steps.Manual(by="bob@ci", since="2024-05-02T00:00:00Z", message="Back <soon>")
    other = steps.Manual(by="alice@laptop", since=MANUAL.since, message="Back at 14:00")
    assert steps.manual_spec(steps.maintenance_run_argv(cfg, later)) == spec
    assert steps.manual_spec(steps.maintenance_run_argv(cfg, other)) != spec


def container(name: str, labels: dict[str, str], ip: str) -> dict[str, object]:
    return {"Id": name, "Name": f"/{name}", "State": {"Running": True, "Health": {
        "Status": "healthy"}}, "Config": {"Labels": labels},
        "NetworkSettings": {"Networks": {"web": {"IPAddress": ip}}}}


def test_the_traefik_stand_in_routes_by_priority(cfg: Config) -> None:
    web = {"traefik.enable": "true",
           "traefik.http.routers.web-1.rule": "Host(`roster.acme.example`)",
           "traefik.http.services.web.loadbalancer.server.port": "8000",
           "traefik.http.routers.web-1.service": "web"}
    cutover = labels(steps.maintenance_run_argv(cfg))
    manual = labels(steps.maintenance_run_argv(cfg, MANUAL))
    with_cutover = build_table([container("w", web, "10.0.0.2"), container("m", cutover,
                                                                             "10.0.0.3")])
    assert with_cutover.match("roster.acme.example").name == "web-1"
    with_manual = build_table([container("w", web, "10.0.0.2"), container("m", manual,
                                                                            "10.0.0.3")])
    assert with_manual.match("roster.acme.example").name == "maintenance-manual-1"
    assert [s.ip for s in with_manual.servers_for("roster.acme.example")] == ["10.0.0.3"]


def report(labels: dict[str, str], state: str = "running") -> str:
    page = f"{state} healthy {json.dumps(labels)}\n".encode()
    return f"@facts 1\ndocker 26.1.5\nmaintenance {base64.b64encode(page).decode()}\n@end\n"


def test_the_facts_read_the_page_and_status_shows_it(cfg: Config) -> None:
    on = facts.parse(report(labels(steps.maintenance_run_argv(cfg, MANUAL))))
    assert on.in_maintenance
    line = maintenance_line(on) or ""
    assert line.startswith("ON since 2024-05-01T10:00:00Z by alice@laptop (healthy, says: "
                           "Back <soon>)")
    cutover = facts.parse(report(labels(steps.maintenance_run_argv(cfg))))
    assert not cutover.in_maintenance and "from db.cutover or backup.restore" in (
        maintenance_line(cutover) or "")
    assert not facts.parse(report({}, "exited")).in_maintenance
    assert maintenance_line(facts.parse("@facts 1\n@end\n")) is None


@pytest.mark.parametrize("message", ["", "   ", "x" * 501, "two\nlines"])
def test_a_message_the_page_cannot_show_is_refused(message: str) -> None:
    with pytest.raises(UserError, match="--message: expected one line of text"):
        check_message(message)
    assert check_message(" Back soon ") == "Back soon"
