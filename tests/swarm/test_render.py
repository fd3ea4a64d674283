"""The files of a Swarm release: golden copies, schemas, and where the secrets go."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from fabfile.config import Config, load_config
from fabfile.render import render_release
from fabfile.swarm.render import app_variables, drain_seconds, render_stack_release, secret_name
from fabfile.swarm.scripts import body
from fabfile.tasks.config import write_release
from tests.swarm.test_topology import SECRETS, swarm_env
from tests.test_render import GOLDEN, SCHEMAS, check_schema


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load_config("swarm", root=swarm_env(tmp_path_factory.mktemp("env")),
                       environ=SECRETS)


def test_golden(cfg: Config) -> None:
    files = render_release(cfg)
    assert [f.path for f in files] == ["stack.yml", "entrypoint.sh", "migrate.yml",
                                       "traefik/traefik.yml", "traefik/dynamic/dynamic.yml"]
    assert files[1].content == body("entrypoint")
    for f in files:
        if f.path == "entrypoint.sh":
            continue
        golden = GOLDEN / "swarm" / f.path
        if os.environ.get("UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(f.content)
        assert f.content == golden.read_text(), f"swarm/{f.path} differs from its golden copy"


def test_no_file_holds_a_secret_and_the_app_gets_each_as_a_docker_secret(cfg: Config) -> None:
    files = render_release(cfg)
    values = [SECRETS["PROD_DATABASE_URL"], SECRETS["SENTRY_DSN"], SECRETS["STRIPE_KEY"]]
    assert not [f.path for f in files for v in values if v in f.content]
    assert all(f.mode == 0o644 for f in files)
    stack = yaml.safe_load(files[0].content)
    web = stack["services"]["web"]
    assert [s["target"] for s in web["secrets"]] == ["DATABASE_URL", "SENTRY_DSN", "STRIPE_KEY"]
    assert "DATABASE_URL" not in web["environment"] and web["environment"]["LOG_LEVEL"] == "info"
    variables = app_variables(cfg)
    assert variables.secret["DATABASE_URL"] == SECRETS["PROD_DATABASE_URL"]
    assert stack["secrets"]["DATABASE_URL"] == {
        "name": secret_name(cfg, "DATABASE_URL", SECRETS["PROD_DATABASE_URL"]), "external": True}


def test_a_secret_gets_a_new_name_only_when_its_value_changes(cfg: Config) -> None:
    name = secret_name(cfg, "DATABASE_URL", "postgresql://a")
    assert secret_name(cfg, "DATABASE_URL", "postgresql://a") == name
    assert secret_name(cfg, "DATABASE_URL", "postgresql://b") != name
    assert len(secret_name(dataclasses.replace(cfg, project="p" * 63), "K" * 60, "v")) <= 64


def test_tasks_drain_past_traefiks_next_poll(cfg: Config) -> None:
    web = yaml.safe_load(render_release(cfg)[0].content)["services"]["web"]
    assert drain_seconds(cfg) == 5 + 2 + 1
    assert web["entrypoint"] == ["/bin/sh", "/shipyard/entrypoint.sh", "8"]
    assert web["command"][0] == "uvicorn" and web["stop_grace_period"] == "38s"
    assert web["deploy"]["update_config"]["order"] == "start-first"
    assert web["deploy"]["update_config"]["failure_action"] == "rollback"
    assert web["deploy"]["endpoint_mode"] == "dnsrr"
    labels = web["deploy"]["labels"]
    assert labels["traefik.http.services.web.loadbalancer.healthcheck.path"] == "/health"
    assert labels["traefik.http.routers.web-1.middlewares"].endswith(",retry@file")
    unsafe = yaml.safe_load(render_stack_release(cfg, skip_drain=True)[0].content)
    assert unsafe["services"]["web"]["entrypoint"][2] == "0"


def test_traefik_is_pinned_to_the_first_manager_with_host_ports(cfg: Config) -> None:
    traefik = yaml.safe_load(render_release(cfg)[0].content)["services"]["traefik"]
    assert traefik["deploy"]["placement"]["constraints"] == [
        "node.role == manager", "node.labels.roster.edge == true"]
    assert {p["mode"] for p in traefik["ports"]} == {"host"}
    assert "/srv/roster/acme.json:/acme/acme.json" in traefik["volumes"]


@pytest.fixture(scope="module")
def rendered(cfg: Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("swarm")
    write_release(render_release(cfg), target)
    return target


@pytest.mark.parametrize("name", ["stack.yml", "migrate.yml"])
def test_stack_files_match_the_compose_spec(rendered: Path, name: str) -> None:
    check_schema(["--builtin-schema", "vendor.compose-spec"], rendered / name)


def test_traefik_files_match_schemas(rendered: Path) -> None:
    check_schema(["--schemafile", str(SCHEMAS / "traefik-v3.json")],
                 rendered / "traefik" / "traefik.yml")
    check_schema(["--schemafile", str(SCHEMAS / "traefik-v3-file-provider.json")],
                 rendered / "traefik" / "dynamic" / "dynamic.yml")


@pytest.mark.testbed
@pytest.mark.parametrize("name", ["stack.yml", "migrate.yml"])
def test_docker_stack_config_accepts(rendered: Path, name: str, docker_engine: object) -> None:
    proc = subprocess.run(["docker", "stack", "config", "-c", name], cwd=rendered,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
