"""Rendered files: golden copies per environment, schema validity, quoting of hostile values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fabfile.config import Config, load_config
from fabfile.render import render_release
from fabfile.tasks.config import write_release
from tests.helpers import DUMMY_SECRETS, env_tree

GOLDEN = Path(__file__).parent / "golden"
SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "schemas"
CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))
ENVS = ["local", "staging", "prod"]


def cfg_for(env: str, root: Path | None = None) -> Config:
    return load_config(env, root=root, environ=DUMMY_SECRETS)


@pytest.mark.parametrize("env", ENVS)
def test_golden(env: str) -> None:
    """Each rendered file equals its golden copy; UPDATE_GOLDEN=1 rewrites them."""
    files = render_release(cfg_for(env))
    for f in files:
        golden = GOLDEN / env / f.path
        if os.environ.get("UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(f.content)
        assert golden.exists(), f"no golden copy {golden}: run with UPDATE_GOLDEN=1"
        assert f.content == golden.read_text(), f"{env}/{f.path} differs from its golden copy"
    on_disk = {str(p.relative_to(GOLDEN / env)) for p in (GOLDEN / env).rglob("*") if p.is_file()}
    assert on_disk == {f.path for f in files}


def test_env_files_are_secret_and_hold_the_database_url() -> None:
    files = {f.path: f for f in render_release(cfg_for("prod"))}
    assert files["app.env"].mode == 0o600 and files["compose.yml"].mode == 0o644
    assert "DATABASE_URL='postgresql://app:prod-pw@db.example:5432/app?sslmode=require'" in \
        files["app.env"].content
    assert "DB_POOL_MAX_SIZE=20" in files["app.env"].content
    for name, f in files.items():
        if name != "app.env":
            assert "prod-pw" not in f.content


def test_sentry_dsn_reaches_only_the_app_env_file() -> None:
    files = render_release(cfg_for("prod"))
    holders = [f.path for f in files if DUMMY_SECRETS["SENTRY_DSN"] in f.content]
    assert holders == ["app.env"]


def test_local_has_database_service_others_do_not() -> None:
    local = yaml.safe_load(render_release(cfg_for("local"))[0].content)
    prod = yaml.safe_load(render_release(cfg_for("prod"))[0].content)
    assert "db" in local["services"] and "pgdata" in local["volumes"]
    assert "db" not in prod["services"] and "traefik" in prod["services"]


def test_web_service_can_be_rolled() -> None:
    """No container_name, no host ports, no host networking; healthcheck tests the drain file."""
    compose = yaml.safe_load(render_release(cfg_for("prod"))[0].content)
    web = compose["services"]["web"]
    assert not {"container_name", "ports", "network_mode"} & set(web)
    assert web["healthcheck"]["test"][1].startswith("test ! -e /tmp/drain && ")
    assert web["stop_grace_period"] == "30s" and web["restart"] == "unless-stopped"
    labels = web["labels"]
    assert labels["traefik.docker.network"] == "web"
    routers = {k.split(".")[3] for k in labels if k.startswith("traefik.http.routers.")}
    assert routers == {"web-1", "web-2", "web-3"}
    assert labels["traefik.http.routers.web-2.tls.domains[0].main"] == "www.roster.acme.example"
    traefik = compose["services"]["traefik"]
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in traefik["volumes"]


def test_hostile_values_stay_inside_their_scalars(tmp_path: Path) -> None:
    hostile = "x$(touch /tmp/pwned);`id`\"\\ ${HOME} $$"
    root = env_tree(tmp_path, {"prod": {"app": {"env": {"NOTE": hostile}}}})
    files = {f.path: f for f in render_release(cfg_for("prod", root))}
    assert f"NOTE='{hostile}'" in files["app.env"].content
    root2 = env_tree(tmp_path / "b", {"prod": {"traefik": {"acme_email": "ops@example.com"},
                                               "app": {"image": "registry.example:5000/a/b"},
                                               "registry": {"server": "registry.example:5000"}}})
    compose = yaml.safe_load(render_release(cfg_for("prod", root2))[0].content)
    assert compose["services"]["web"]["image"] == "registry.example:5000/a/b:latest"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for env in ENVS:
        target = tmp_path_factory.mktemp(env)
        write_release(render_release(cfg_for(env)), target)
        out[env] = target
    return out


def check_schema(args: list[str], path: Path) -> None:
    proc = subprocess.run([CHECK_JSONSCHEMA, *args, str(path)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("env", ENVS)
def test_compose_matches_compose_spec(rendered: dict[str, Path], env: str) -> None:
    check_schema(["--builtin-schema", "vendor.compose-spec"], rendered[env] / "compose.yml")


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_traefik_files_match_schemas(rendered: dict[str, Path], env: str) -> None:
    check_schema(["--schemafile", str(SCHEMAS / "traefik-v3.json")],
                 rendered[env] / "traefik" / "traefik.yml")
    check_schema(["--schemafile", str(SCHEMAS / "traefik-v3-file-provider.json")],
                 rendered[env] / "traefik" / "dynamic" / "dynamic.yml")


def test_schema_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "traefik.yml"
    bad.write_text("entryPoints:\n  web:\n    adress: ':80'\n")
    proc = subprocess.run([CHECK_JSONSCHEMA, "--schemafile", str(SCHEMAS / "traefik-v3.json"),
                           str(bad)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0


@pytest.mark.testbed
@pytest.mark.parametrize("env", ENVS)
def test_docker_compose_config_accepts(rendered: dict[str, Path], env: str,
                                       docker_engine: object) -> None:
    proc = subprocess.run(["docker", "compose", "config", "-q"], cwd=rendered[env],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
