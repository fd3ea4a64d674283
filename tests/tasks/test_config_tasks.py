"""The `config.show` and `render` tasks through the real `inv` CLI: output, exit codes, messages."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import DUMMY_SECRETS, env_tree, run_inv


def test_list_groups_tasks_with_one_line_each() -> None:
    proc = run_inv("--list")
    assert proc.returncode == 0
    assert "config.show" in proc.stdout and "render" in proc.stdout


def test_every_task_documents_every_option() -> None:
    from invoke.collection import Collection

    import tasks

    def walk(coll: Collection, prefix: str = "") -> list[str]:
        names = [prefix + n for n in coll.tasks]
        for name, sub in coll.collections.items():
            names += walk(sub, f"{prefix}{name}.")
        return names

    for name in walk(tasks.ns):
        task = tasks.ns[name]
        assert task.__doc__ and task.__doc__.strip(), f"{name} has no docstring"
        saved = dict(task.help)
        try:  # Invoke's get_arguments() pops what it reads from task.help
            params = [p for p in task.get_arguments() if p.name not in ("c", "ctx")]
        finally:
            task.help = saved
        for param in params:
            assert param.help, f"{name} --{param.name} has no help"


def test_show_redacts_secrets() -> None:
    proc = run_inv("config.show", "--env=prod", "--json", extra_env=DUMMY_SECRETS)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["database"]["url"] == "*** (from PROD_DATABASE_URL)"
    for value in DUMMY_SECRETS.values():
        assert value not in proc.stdout


def test_show_unknown_env_is_one_clear_message() -> None:
    proc = run_inv("config.show", "--env=production")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("error: unknown environment 'production': expected one of "
                                   "local, prod, staging (a file environments/<env>.yaml)")
    assert "Traceback" not in proc.stderr + proc.stdout


def test_render_bad_config_names_file_and_key(tmp_path: Path) -> None:
    root = env_tree(tmp_path, {"prod": {"hosts": [{"address": "vps1;reboot"}]}})
    proc = run_inv("render", "--env=prod", "--placeholder-secrets", f"--out={tmp_path / 'o'}",
                   env_dir=root)
    assert proc.returncode == 1
    assert "environments/prod.yaml: hosts.0.address: expected a hostname or IP address" in \
        proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_render_missing_secret_without_placeholders_fails(tmp_path: Path) -> None:
    proc = run_inv("render", "--env=prod", f"--out={tmp_path / 'o'}")
    assert proc.returncode == 1
    assert "database.url: expected the secret PROD_DATABASE_URL" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_render_with_placeholders_writes_env_files_0600(tmp_path: Path) -> None:
    out = tmp_path / "o"
    proc = run_inv("render", "--env=prod", "--placeholder-secrets", f"--out={out}")
    assert proc.returncode == 0, proc.stderr
    assert (out / "app.env").stat().st_mode & 0o777 == 0o600
    assert (out / "compose.yml").stat().st_mode & 0o777 == 0o644
    assert "DATABASE_URL='placeholder-prod_database_url'" in (out / "app.env").read_text()
    assert "app.env" in proc.stdout


def test_render_never_overwrites_a_foreign_file(tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "compose.yml").write_text("services: {mine: {image: x}}\n")
    proc = run_inv("render", "--env=prod", "--placeholder-secrets", f"--out={out}")
    assert proc.returncode == 1
    assert "was not written by `inv render`" in proc.stderr
    assert (out / "compose.yml").read_text() == "services: {mine: {image: x}}\n"
    assert not (out / "app.env").exists()


def test_help_texts_spelled_out_for_a_fast_start_match_their_source() -> None:
    """Task modules do not import the heavy modules these texts describe (see their comments);
    the copies must not drift from the originals."""
    from typing import get_args

    from fabfile import notify
    from fabfile.backup.naming import DATE_HELP
    from fabfile.checks.doctor import CHECK_NAMES
    from fabfile.tasks import backup, doctor
    from fabfile.tasks import notify as notify_tasks

    assert backup.DATE.endswith(DATE_HELP)
    only = doctor.doctor.help["only"]
    assert all(name in only for name in CHECK_NAMES), only
    assert ", ".join(get_args(notify.Level)) in notify_tasks.send.help["level"]
