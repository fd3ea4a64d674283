"""Read `environments/base.yaml` + `<env>.yaml`, deep-merge them, validate into `Config`.

Every problem is reported with the file that set the key, the dotted key and what was
expected; all problems of one load are gathered into one `UserError`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from fabfile import ENVIRONMENTS_DIR, PROJECT_ROOT
from fabfile.errors import UserError

from . import checks
from .model import Config
from .secrets import Secret, SecretRef, SecretSource

ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
INTERNAL_FIELDS = {"env", "sources", "root"}
Path_ = tuple[str, ...]


def environments_dir() -> Path:
    """`DEPLOY_ENVIRONMENTS_DIR` when set (tests, other projects), else the repo's own."""
    return Path(os.environ.get("DEPLOY_ENVIRONMENTS_DIR", ENVIRONMENTS_DIR))


def available_envs(root: Path) -> list[str]:
    return sorted(p.stem for p in root.glob("*.yaml") if p.stem != "base")


def _read_yaml(path: Path, shown: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"{shown}: not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{shown}: expected a mapping of keys at the top level")
    return data


def deep_merge(
    base: dict[str, Any], over: dict[str, Any], origin: dict[Path_, str], name: str,
    prefix: Path_ = (),
) -> dict[str, Any]:
    """Merge `over` into a copy of `base`: mappings merge key by key, anything else replaces.

    `origin` records, for every key path touched, the file that set it last.
    """
    merged = dict(base)
    for key, value in over.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value, origin, name, path)
        else:
            merged[key] = value
            _mark(value, path, origin, name)
        origin[path] = name
    return merged


def _mark(value: Any, path: Path_, origin: dict[Path_, str], name: str) -> None:
    origin[path] = name
    if isinstance(value, dict):
        for key, item in value.items():
            _mark(item, (*path, str(key)), origin, name)


class _Builder:
    """Turns merged YAML data into dataclasses, collecting every error on the way."""

    def __init__(self, origin: dict[Path_, str], fallback: str, secrets: SecretSource) -> None:
        self.origin = origin
        self.fallback = fallback
        self.secrets = secrets
        self.errors: list[str] = []

    def where(self, path: Path_) -> str:
        for end in range(len(path), 0, -1):
            if path[:end] in self.origin:
                return self.origin[path[:end]]
        return self.fallback

    def fail(self, path: Path_, expected: str, value: Any = ...) -> None:
        got = "" if value is ... else f", got {_show(value)}"
        key = ".".join(path) or "(top level)"
        self.errors.append(f"{self.where(path)}: {key}: expected {expected}{got}")

    def build(self, tp: Any, value: Any, path: Path_) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            inner = [a for a in args if a is not type(None)]
            if len(inner) == 1:
                return self.build(inner[0], value, path)
            chosen = next((a for a in inner if _fits(a, value)), None)
            if chosen is None:
                self.fail(path, " or ".join(_describe(a) for a in inner), value)
                return None
            return self.build(chosen, value, path)
        if dataclasses.is_dataclass(tp):
            return self.build_dataclass(typing.cast(type, tp), value, path)
        if tp is Secret:
            return self.build_secret(value, path)
        if origin is Literal:
            if value not in args:
                self.fail(path, "one of " + ", ".join(repr(a) for a in args), value)
            return value
        if origin is tuple:
            if not isinstance(value, list):
                self.fail(path, "a list", value)
                return ()
            return tuple(self.build(args[0], item, (*path, str(i))) for i, item in enumerate(value))
        if origin is dict:
            if not isinstance(value, dict):
                self.fail(path, "a mapping", value)
                return {}
            return {str(k): self.build(args[1], v, (*path, str(k))) for k, v in value.items()}
        return self.build_scalar(tp, value, path)

    def build_scalar(self, tp: Any, value: Any, path: Path_) -> Any:
        if tp is bool and not isinstance(value, bool):
            self.fail(path, "true or false", value)
        elif tp is int and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(path, "a whole number", value)
        elif tp is float and (isinstance(value, bool) or not isinstance(value, int | float)):
            self.fail(path, "a number", value)
        elif tp is float:
            return float(value)
        elif tp is str and not isinstance(value, str):
            self.fail(path, 'a string (quote it in YAML, e.g. "1.0")', value)
        return value

    def build_secret(self, value: Any, path: Path_) -> Secret | None:
        if not (isinstance(value, dict) and set(value) <= {"secret", "generate"}
                and isinstance(value.get("secret"), str)
                and isinstance(value.get("generate", False), bool)):
            self.fail(path, "a reference {secret: ENV_VAR_NAME}: secrets are never written in YAML")
            return None
        ref = SecretRef(value["secret"], value.get("generate", False))
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", ref.var):
            self.fail(path, "an environment variable name", ref.var)
            return None
        secret = self.secrets.lookup(ref)
        if secret is None:
            self.fail(path, f"the secret {ref.var} to be set in the environment or in "
                            f"{self.secrets.dotenv.name} (missing)")
        return secret

    def build_dataclass(self, cls: type, value: Any, path: Path_) -> Any:
        if not isinstance(value, dict):
            self.fail(path, "a mapping of keys", value)
            return None
        hints = typing.get_type_hints(cls)
        internal = INTERNAL_FIELDS if cls is Config else set()
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in internal}
        for key in value:
            if key not in fields:
                shown = ".".join((*path, str(key)))
                self.errors.append(f"{self.where((*path, str(key)))}: {shown}: unknown key "
                                   f"(expected one of: {', '.join(sorted(fields))})")
        kwargs: dict[str, Any] = {}
        for fname, f in fields.items():
            sub = (*path, fname)
            if fname not in value:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    self.fail(sub, "a value (the key is missing)")
                continue
            built = self.build(hints[fname], value[fname], sub)
            check = f.metadata.get("check")
            if check is not None and built is not None and not self._failed_at(sub):
                items = built if isinstance(built, tuple) else (built,)
                for item in items:
                    problem = check(item)
                    if problem:
                        self.fail(sub, problem, item)
                        break
            kwargs[fname] = built
        if self.errors:
            return None
        try:
            return cls(**kwargs)
        except TypeError as exc:
            self.fail(path, str(exc))
            return None

    def _failed_at(self, path: Path_) -> bool:
        key = ".".join(path) + ":"
        return any(f": {key}" in err for err in self.errors)


def _fits(tp: Any, value: Any) -> bool:
    """Whether a YAML value has the shape of `tp`: picks the alternative of a union."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        return isinstance(value, list)
    if origin is dict or dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    if tp in (int, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, tp) if isinstance(tp, type) else False


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false"
            }.get(tp, getattr(tp, "__name__", str(tp)))


def _show(value: Any) -> str:
    if isinstance(value, Secret):
        return "***"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _cross_checks(cfg: Config, b: _Builder) -> None:
    """Rules that span several keys."""
    if not cfg.hosts:
        b.fail(("hosts",), "at least one host")
    if len(set(cfg.domains)) != len(cfg.domains):
        b.fail(("domains",), "each domain once", list(cfg.domains))
    for i, name in enumerate(cfg.domains):
        problem = checks.domain(name)
        if problem:
            b.fail(("domains", str(i)), problem, name)
    if cfg.traefik.enabled and not cfg.domains:
        b.fail(("domains",), "at least one domain for Traefik to route")
    db = cfg.database
    if (db.url is None) == (db.local is None):
        b.fail(("database",), "exactly one of `url` (managed PostgreSQL) or `local` (a service)")
    if db.url is not None and not db.url.placeholder:
        problem = checks.postgres_url(db.url.reveal(), require_tls=True)
        if problem:
            b.fail(("database", "url"), f"{problem} (in secret {db.url.name})")
    if db.local is not None and db.local.password is None:
        b.fail(("database", "local", "password"), "a reference {secret: VAR, generate: true}")
    if db.backend == "sqlite" and db.sqlite_path is None:
        b.fail(("database", "sqlite_path"), "the host path of the app's SQLite file when "
               "database.backend is sqlite")
    if db.pool.min_size > db.pool.max_size:
        b.fail(("database", "pool"), "min_size <= max_size")
    if cfg.app.healthcheck.command == ():
        b.fail(("app", "healthcheck", "command"), "a string (shell form) or a list of at least "
               "one word (exec form); leave the key out for the default check", [])
    command = cfg.app.healthcheck.command
    if isinstance(command, tuple) and any("\n" in word for word in command):
        b.fail(("app", "healthcheck", "command"), "words without newlines in the exec form")
    clash = set(cfg.app.env) & set(cfg.app.secret_env)
    if clash:
        b.fail(("app", "secret_env"), "names not already in app.env", sorted(clash))
    reserved = {"DATABASE_URL", "SENTRY_DSN", "DB_POOL_MIN_SIZE", "DB_POOL_MAX_SIZE",
                "DB_POOL_TIMEOUT", "APP_ENV", "APP_VERSION"}
    taken = (set(cfg.app.env) | set(cfg.app.secret_env)) & reserved
    if taken:
        b.fail(("app", "env"), "names other than those the tool sets", sorted(taken))
    for key, secret in cfg.app.secret_env.items():
        if secret is not None and ("'" in secret.reveal() or "\n" in secret.reveal()):
            b.fail(("app", "secret_env", key), f"secret {secret.name} without ' or newlines")
    if cfg.backup is not None and cfg.backup.sse == "aws:kms" and not cfg.backup.kms_key_id:
        b.fail(("backup", "kms_key_id"), "a KMS key id when sse is aws:kms")
    if cfg.backup is not None and cfg.backup.endpoint_url:
        problem = checks.https_url(cfg.backup.endpoint_url)
        if problem:
            b.fail(("backup", "endpoint_url"), problem, cfg.backup.endpoint_url)
    for key, value in cfg.app.build.secrets.items():
        problem = checks.file_path(value)
        if problem:
            b.fail(("app", "build", "secrets", key), problem, value)
    reg = cfg.registry
    if reg is not None:
        if not cfg.app.image.startswith(f"{reg.server}/"):
            b.fail(("app", "image"), f"an image in the registry {reg.server} (an image name "
                   f"starting with {reg.server}/), as registry.server says", cfg.app.image)
        if (reg.username is None) != (reg.password is None):
            b.fail(("registry",), "both `username` and `password` ({secret: NAME}), or "
                   "neither (a registry that needs no login)")
    local = [h for h in cfg.hosts if h.transport == "local"]
    if local and len(cfg.hosts) > 1:
        b.fail(("hosts",), "a single host when one uses transport: local")
    from fabfile.swarm.topology import problems

    for path, expected in problems(cfg):
        b.fail(path, expected)


def load_config(
    env: str,
    *,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
    placeholder_secrets: bool = False,
    dotenv_dir: Path | None = None,
) -> Config:
    """Load and validate one environment, or raise UserError naming file, key and expectation."""
    root = root or environments_dir()
    if not ENV_NAME.match(env) or env == "base" or not (root / f"{env}.yaml").exists():
        names = ", ".join(available_envs(root)) or "none"
        raise UserError(f"unknown environment {env!r}: expected one of {names} "
                        f"(a file {root.name}/<env>.yaml)")
    shown_base = f"{root.name}/base.yaml"
    shown_env = f"{root.name}/{env}.yaml"
    origin: dict[Path_, str] = {}
    merged: dict[str, Any] = {}
    if (root / "base.yaml").exists():
        merged = deep_merge({}, _read_yaml(root / "base.yaml", shown_base), origin, shown_base)
    merged = deep_merge(merged, _read_yaml(root / f"{env}.yaml", shown_env), origin, shown_env)
    dotenv = (dotenv_dir or (PROJECT_ROOT if root == ENVIRONMENTS_DIR else root.parent))
    source = SecretSource(environ if environ is not None else os.environ,
                          dotenv / f".env.{env}", placeholders=placeholder_secrets)
    builder = _Builder(origin, f"{shown_base} or {shown_env}", source)
    cfg = builder.build_dataclass(Config, merged, ())
    if cfg is not None:
        cfg = dataclasses.replace(cfg, env=env, sources=(shown_base, shown_env),
                                  root=str(dotenv))
        _cross_checks(cfg, builder)
    if builder.errors or cfg is None:
        raise UserError("invalid configuration for environment "
                        f"{env!r}:\n  " + "\n  ".join(builder.errors))
    return typing.cast(Config, cfg)
