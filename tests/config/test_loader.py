"""Config loading: the shipped environments resolve; every kind of bad input names file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.config import Config, load_config
from fabfile.errors import UserError
from tests.helpers import DUMMY_SECRETS, env_tree


def load(env: str, root: Path | None = None, **environ: str) -> Config:
    return load_config(env, root=root, environ={**DUMMY_SECRETS, **environ})


@pytest.mark.parametrize("env", ["local", "staging", "prod"])
def test_shipped_environments_load(env: str) -> None:
    cfg = load(env)
    assert cfg.env == env
    assert cfg.hosts and cfg.domains
    assert cfg.sources == ("environments/base.yaml", f"environments/{env}.yaml")


def test_env_file_deep_merges_over_base() -> None:
    cfg = load("prod")
    assert cfg.app.resources.memory == "1g"  # from prod.yaml
    assert cfg.app.healthcheck.retries == 3  # from base.yaml, untouched by prod's app mapping
    assert cfg.app.env == {"LOG_LEVEL": "info", "WEB_CONCURRENCY": "2"}
    assert cfg.database.pool.min_size == 5 and cfg.database.pool.timeout == 30


def test_config_is_frozen() -> None:
    cfg = load("prod")
    with pytest.raises(AttributeError):
        cfg.project = "other"  # type: ignore[misc]


def test_secrets_never_print() -> None:
    cfg = load("prod")
    assert cfg.database.url is not None
    assert "prod-pw" not in repr(cfg) and "prod-pw" not in str(cfg.database.url)
    assert f"{cfg.database.url}" == "***"
    assert cfg.database.url.reveal().startswith("postgresql://")


def test_secret_from_dotenv_file(tmp_path: Path) -> None:
    root = env_tree(tmp_path)
    secrets = {k: v for k, v in DUMMY_SECRETS.items() if k != "PROD_DATABASE_URL"}
    (tmp_path / ".env.prod").write_text(
        "# comment\nPROD_DATABASE_URL='postgresql://u:p@h:5432/d?sslmode=verify-full'\n")
    cfg = load_config("prod", root=root, environ=secrets)
    assert cfg.database.url is not None and cfg.database.url.reveal().endswith("verify-full")


def test_generated_secret_goes_to_dotenv_mode_0600(tmp_path: Path) -> None:
    root = env_tree(tmp_path)
    cfg = load_config("local", root=root, environ={})
    dotenv = tmp_path / ".env.local"
    assert dotenv.stat().st_mode & 0o777 == 0o600
    assert cfg.database.local is not None and cfg.database.local.password is not None
    password = cfg.database.local.password.reveal()
    assert f"LOCAL_POSTGRES_PASSWORD={password}" in dotenv.read_text()
    again = load_config("local", root=root, environ={})
    assert again.database.local is not None and again.database.local.password is not None
    assert again.database.local.password.reveal() == password


def expect_error(tmp_path: Path, overrides: dict[str, object], env: str = "prod",
                 **environ: str) -> str:
    root = env_tree(tmp_path, overrides)  # type: ignore[arg-type]
    with pytest.raises(UserError) as info:
        load(env, root, **environ)
    return info.value.message


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    msg = expect_error(tmp_path, {"prod": {"app": {"replica": 3}}})
    assert "environments/prod.yaml: app.replica: unknown key" in msg
    assert "replicas" in msg


def test_wrong_type_names_file_key_and_expectation(tmp_path: Path) -> None:
    msg = expect_error(tmp_path, {"base": {"app": {"port": "eighty"}}})
    assert "environments/base.yaml: app.port: expected a whole number, got 'eighty'" in msg


def test_bool_is_not_a_number(tmp_path: Path) -> None:
    msg = expect_error(tmp_path, {"prod": {"app": {"replicas": True}}})
    assert "app.replicas: expected a whole number, got True" in msg


def test_lock_stale_after_leaves_room_for_a_few_heartbeats(tmp_path: Path) -> None:
    msg = expect_error(tmp_path, {"prod": {"deploy": {"lock_stale_after": 2}}})
    assert "deploy.lock_stale_after: expected a whole number of seconds, 3 or more" in msg
    assert load("prod").deploy.lock_stale_after == 60 and load("prod").deploy.heartbeat == 5


def test_missing_secret(tmp_path: Path) -> None:
    root = env_tree(tmp_path)
    secrets = {k: v for k, v in DUMMY_SECRETS.items() if k != "PROD_DATABASE_URL"}
    with pytest.raises(UserError) as info:
        load_config("prod", root=root, environ=secrets)
    assert ("environments/prod.yaml: database.url: expected the secret PROD_DATABASE_URL to be "
            "set in the environment or in .env.prod (missing)") in info.value.message


def test_literal_secret_in_yaml_is_refused(tmp_path: Path) -> None:
    msg = expect_error(tmp_path, {"prod": {"database": {"url": "postgresql://u:pw@h/d"}}})
    assert "database.url: expected a reference {secret: ENV_VAR_NAME}" in msg
    assert "pw@h" not in msg


def test_unknown_env_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        load("production")
    assert "unknown environment 'production': expected one of local, prod, staging" in str(
        info.value)


@pytest.mark.parametrize("bad", ["../prod", "base", "Prod", "prod;rm -rf /"])
def test_env_names_outside_the_directory_are_unknown(bad: str) -> None:
    with pytest.raises(UserError, match="unknown environment"):
        load(bad)


@pytest.mark.parametrize("domain", ["api..example.com", "-api.example.com", "localhost",
                                    "API.example.com", "api.example.com`) || Host(`evil.com",
                                    "a" * 64 + ".example.com"])
def test_malformed_domain(tmp_path: Path, domain: str) -> None:
    msg = expect_error(tmp_path, {"prod": {"domains": ["roster.acme.example", domain]}})
    assert "environments/prod.yaml: domains.1: expected a domain name such as" in msg


@pytest.mark.parametrize("address", ["vps1.example.com; rm -rf /", "$(reboot)", "host name",
                                     "-oProxyCommand=sh", "vps`id`.example.com"])
def test_hostile_host_address(tmp_path: Path, address: str) -> None:
    msg = expect_error(tmp_path, {"prod": {"hosts": [{"address": address}]}})
    assert "environments/prod.yaml: hosts.0.address: expected a hostname or IP address" in msg


def test_hostile_user_and_paths(tmp_path: Path) -> None:
    msg = expect_error(tmp_path, {"prod": {
        "hosts": [{"address": "203.0.113.10", "user": "root;id"}],
        "deploy": {"app_dir": "/srv/app; rm -rf /"},
    }})
    assert "hosts.0.user: expected a Unix user name" in msg
    assert "deploy.app_dir: expected an absolute path" in msg


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    msg = expect_error(tmp_path, {"prod": {"app": {"replicas": 0, "tag": 1.5}}})
    assert "app.replicas: expected a number above 0, got 0" in msg
    assert "app.tag: expected a string" in msg


def test_database_url_must_require_tls(tmp_path: Path) -> None:
    msg = expect_error(tmp_path, {}, PROD_DATABASE_URL="postgresql://u:p@db.example:5432/app")
    assert "database.url: expected a URL with ?sslmode=require" in msg
    assert "u:p@" not in msg


def test_exactly_one_database(tmp_path: Path) -> None:
    msg = expect_error(tmp_path, {"prod": {"database": {"local": {
        "password": {"secret": "LOCAL_POSTGRES_PASSWORD"}}}}})
    assert "database: expected exactly one of `url`" in msg


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    root = env_tree(tmp_path)
    (root / "prod.yaml").write_text("app:\n  tag: [unclosed\n")
    with pytest.raises(UserError) as info:
        load("prod", root)
    assert info.value.message.startswith("environments/prod.yaml: not valid YAML at line")


def test_env_values_that_cannot_go_into_an_env_file(tmp_path: Path) -> None:
    msg = expect_error(tmp_path, {"prod": {"app": {"env": {"GREETING": "it's"}}}})
    assert "app.env: expected values without single quotes or newlines" in msg


def test_reserved_env_names(tmp_path: Path) -> None:
    msg = expect_error(tmp_path, {"prod": {"app": {"env": {"DATABASE_URL": "x"}}}})
    assert "app.env: expected names other than those the tool sets" in msg


@pytest.mark.parametrize(("command", "expected"), [
    ("curl -fsS http://127.0.0.1:8000/health", "curl -fsS http://127.0.0.1:8000/health"),
    (["/healthcheck", "--port", "8000"], ("/healthcheck", "--port", "8000")),
])
def test_healthcheck_command_shell_or_exec_form(tmp_path: Path, command: object,
                                                expected: object) -> None:
    root = env_tree(tmp_path, {"prod": {"app": {"healthcheck": {"command": command}}}})
    assert load("prod", root).app.healthcheck.command == expected
    assert load("staging", root).app.healthcheck.command is None


@pytest.mark.parametrize(("command", "message"), [
    (8000, "app.healthcheck.command: expected a string or a list, got 8000"),
    ([], "app.healthcheck.command: expected a string (shell form) or a list of at least one"),
    ("  ", "app.healthcheck.command: expected a non-empty command"),
    (["/bin/check", ""], "app.healthcheck.command: expected a non-empty command"),
    (["/bin/check", "a\nb"], "app.healthcheck.command: expected words without newlines"),
    ({"shell": "x"}, "app.healthcheck.command: expected a string or a list, got {'shell'"),
])
def test_bad_healthcheck_command(tmp_path: Path, command: object, message: str) -> None:
    msg = expect_error(tmp_path, {"prod": {"app": {"healthcheck": {"command": command}}}})
    assert f"environments/prod.yaml: {message}" in msg
