"""Pure tests of the cutover's parts: config validation, rendering on SQLite, the maintenance
container, the facts the deploy guard reads, the snapshot's messages and the task's options."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

from fabfile import shell
from fabfile.config import Config, load_config
from fabfile.cutover import run, snapshot, steps
from fabfile.deploy import facts, rollout
from fabfile.errors import UserError
from fabfile.render import render_release
from fabfile.tasks import cutover as cutover_tasks
from fabfile.tasks import db as db_tasks
from tests.helpers import DUMMY_SECRETS, env_tree

SQLITE = {"database": {"backend": "sqlite", "sqlite_path": "/var/lib/app/data/roster.db"}}


def cfg(tmp_path: Path, data: dict[str, object] | None = None, env: str = "staging") -> Config:
    return load_config(env, root=env_tree(tmp_path, {env: data or {}}), environ=DUMMY_SECRETS)


def test_backend_sqlite_needs_sqlite_path(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        cfg(tmp_path, {"database": {"backend": "sqlite"}})
    assert "database.sqlite_path: expected the host path of the app's SQLite file when " \
           "database.backend is sqlite" in err.value.message
    assert "environments/" in err.value.message


@pytest.mark.parametrize(("data", "expected"), [
    ({"database": {"backend": "mysql"}}, "database.backend"),
    ({"database": {"sqlite_path": "relative/roster.db"}}, "database.sqlite_path: expected an "
                                                          "absolute path"),
    ({"maintenance": {"port": 0}}, "maintenance.port"),
    ({"maintenance": {"colour": "red"}}, "maintenance.colour: unknown key"),
])
def test_bad_values_name_the_key(tmp_path: Path, data: dict[str, object], expected: str) -> None:
    with pytest.raises(UserError) as err:
        cfg(tmp_path, data)
    assert expected in err.value.message


def test_render_on_sqlite_mounts_the_directory_and_points_the_url_at_it(tmp_path: Path) -> None:
    files = {f.path: f.content for f in render_release(cfg(tmp_path, SQLITE))}
    assert "DATABASE_URL='sqlite:////srv/sqlite/roster.db'\n" in files["app.env"]
    web = yaml.safe_load(files["compose.yml"])["services"]["web"]
    assert web["volumes"] == ["/var/lib/app/data:/srv/sqlite"]


def test_render_on_postgres_ignores_sqlite_path(tmp_path: Path) -> None:
    data = {"database": {"sqlite_path": "/var/lib/app/data/roster.db"}}
    plain = {f.path: f.content for f in render_release(cfg(tmp_path / "a"))}
    with_path = {f.path: f.content for f in render_release(cfg(tmp_path / "b", data))}
    assert with_path == plain
    assert "volumes" not in yaml.safe_load(plain["compose.yml"])["services"]["web"]


def test_postgres_config_is_the_same_release_as_the_yaml_saying_postgres(tmp_path: Path) -> None:
    switched = run.postgres_config(cfg(tmp_path / "a", SQLITE))
    edited = cfg(tmp_path / "b", {"database": {**SQLITE["database"], "backend": "postgres"}})
    assert render_release(switched) == render_release(edited)


def test_maintenance_container_routes_every_domain_at_lowest_priority(tmp_path: Path) -> None:
    c = cfg(tmp_path, {**SQLITE, "domains": ["a.example.com", "b.example.com"]}, env="prod")
    argv = steps.maintenance_run_argv(c)
    labels = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--label")
    assert labels["traefik.http.routers.maintenance-1.rule"] == "Host(`a.example.com`)"
    assert labels["traefik.http.routers.maintenance-2.rule"] == "Host(`b.example.com`)"
    assert labels["traefik.http.routers.maintenance-1.priority"] == "1"
    assert labels["traefik.docker.network"] == c.deploy.network
    assert labels["com.docker.compose.project"] == c.project
    envs = [argv[i + 1] for i, a in enumerate(argv) if a == "-e"]
    page = next(e for e in envs if e.startswith("MAINTENANCE_PAGE="))
    assert "<h1>Down for maintenance</h1>" in page
    assert argv[argv.index(c.maintenance.image) + 1:] == c.maintenance.command
    health = argv[argv.index("--health-cmd") + 1]
    assert health.startswith(f"test ! -e {steps.MAINTENANCE_DRAIN} && wget")


def test_site_steps_carry_the_rollout_library_and_their_values(tmp_path: Path) -> None:
    c = cfg(tmp_path, SQLITE)
    lib = shell.read("fabfile.deploy", "lib")
    stop = steps.stop_web(c)
    assert stop.argv[2].startswith(lib) and stop.argv[2].endswith(shell.read("fabfile.cutover",
                                                                              "site"))
    assert stop.argv[4:] == ("stop-web", c.project, c.app.name, c.app.drain_file,
                             f"{rollout.settle(c):g}", str(c.app.stop_grace_period),
                             str(rollout.unhealthy_timeout(c)))
    assert steps.maintenance_on(c).argv[4:7] == ("maint-up", steps.maintenance_name(c),
                                                 str(c.maintenance.ready_timeout
                                                     + c.app.healthcheck.start_period))


def test_page_escapes_html(tmp_path: Path) -> None:
    c = cfg(tmp_path, {"maintenance": {"message": "<script>x</script> & co"}})
    assert "&lt;script&gt;x&lt;/script&gt; &amp; co" in steps.maintenance_page(c)


def test_check_config(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"has no database\.sqlite_path"):
        run.check_config(cfg(tmp_path / "a"))
    with pytest.raises(UserError, match="already postgres"):
        run.check_config(cfg(tmp_path / "b", {"database": {"sqlite_path": "/d/x.db"}}))
    assert run.check_config(cfg(tmp_path / "c", SQLITE)).startswith("postgresql://")


def test_plan_lines_never_show_the_password(tmp_path: Path) -> None:
    c = cfg(tmp_path, SQLITE)
    url = run.check_config(c)
    text = "\n".join(run.plan_lines(c, url))
    password = url.split("//", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password not in text
    assert "roster.db" in text and "maintenance on" in text


FACTS = "@facts 1\ndocker 24.0.7\ncompose 2.26.1\napp_dir present\nlock free\nnetwork present\n"


def test_facts_report_the_marker_and_the_deploy_refuses_sqlite_after_cutover(
        tmp_path: Path) -> None:
    found = facts.parse(FACTS + "database_backend postgres\n@end\n")
    assert found.database_backend == "postgres"
    with pytest.raises(UserError) as err:
        facts.require_ready(found, cfg(tmp_path / "a", SQLITE), "h", "deploy")
    assert "Cutover done: set database.backend: postgres in environments/staging.yaml" in \
        err.value.message
    facts.require_ready(found, cfg(tmp_path / "b"), "h", "deploy")
    facts.require_ready(facts.parse(FACTS + "@end\n"), cfg(tmp_path / "c", SQLITE), "h", "d")


@pytest.mark.parametrize(("marker", "expected"), [
    ("missing", "does not exist on host: check database.sqlite_path"),
    ("no-tool", "neither python3 (with its sqlite3 module) nor the sqlite3 shell"),
    ("unreadable", "is not readable by"),
    ("workdir", "cannot create a snapshot directory"),
    ("backup disk I/O error", "the online backup of /var/lib/app/data/roster.db failed on "
                              "host: disk I/O error"),
])
def test_snapshot_failures_say_what_to_do(tmp_path: Path, marker: str, expected: str) -> None:
    c = cfg(tmp_path, SQLITE)
    assert expected in snapshot.explain(c, "host", f"@error {marker}\n", "", 3)


def test_snapshot_needs_one_host(tmp_path: Path) -> None:
    c = cfg(tmp_path, {**SQLITE, "hosts": [{"address": "a.example.com"},
                                           {"address": "b.example.com"}]}, env="prod")
    with pytest.raises(UserError, match="has 2 hosts"):
        snapshot.require_sqlite(c)


def test_migrate_task_keeps_every_original_option_and_adds_env() -> None:
    original = inspect.signature(db_tasks.migrate_from_sqlite.body).parameters
    wrapped = inspect.signature(cutover_tasks.migrate_from_sqlite.body).parameters
    assert list(wrapped) == [*original, "env"]
    assert {k: v.default for k, v in wrapped.items() if k != "env"} == {
        k: v.default for k, v in original.items()}
    assert set(cutover_tasks.migrate_from_sqlite.help) == set(db_tasks.migrate_from_sqlite.help) \
        | {"env"}


def test_the_db_collection_has_the_env_aware_task_and_cutover() -> None:
    from tasks import ns
    db = ns.collections["db"]
    assert db.tasks["migrate-from-sqlite"] is cutover_tasks.migrate_from_sqlite
    assert db.tasks["cutover"] is cutover_tasks.cutover
    assert "verify" in db.tasks


def test_env_and_sqlite_together_is_one_clear_error() -> None:
    from tests.helpers import run_inv
    proc = run_inv("db.migrate-from-sqlite", "--env=staging", "--sqlite=/tmp/x.db", timeout=60)
    assert proc.returncode == 1
    assert "--env takes the SQLite file from the environment's host: leave out --sqlite" in \
        proc.stderr


def _web(c: Config, image: str, release: str) -> facts.Container:
    return facts.Container(id=f"id-{release}", service=c.app.name, oneoff=False, state="running",
                           health="healthy", started_at="", name=f"web-{release}", image=image,
                           config_file=f"{c.deploy.app_dir}/releases/{release}/compose.yml")


def test_the_cutover_deploys_the_version_the_host_serves_not_the_yaml_tag(
        tmp_path: Path) -> None:
    c = cfg(tmp_path, SQLITE)
    current = "20261205T100000Z-0123abc-2"
    found = facts.Facts(current=current, containers=(
        _web(c, f"{c.app.image}:0123abc", current),
        _web(c, f"{c.app.image}:old", "20261204T100000Z-old")))
    serving = run.serving_config(c, found)
    assert serving.app.tag == "0123abc" and serving.database.backend == "postgres"
    bare = run.serving_config(c, facts.Facts(current="20261205T100000Z-v7"))
    assert bare.app.tag == "v7"
