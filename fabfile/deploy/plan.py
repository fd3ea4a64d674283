"""Plans are pure: (config, a host's facts, the rendered release) -> what to change, as steps.

A deploy plan compares the rendered files with the host's `current` release and the running
containers with what the config asks for, and yields only the steps needed:

    upload -> pull -> services -> migrate -> web: roll up -> web: drain old

A host that already runs exactly this release gets no steps at all (a no-change deploy
costs two commands: facts and finish). Nothing here touches a host; `as_data` renders a
plan as plain data for golden tests and `--json`.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from fabfile.config import Config
from fabfile.errors import UserError
from fabfile.remote import Step
from fabfile.render import RenderedFile

from . import rollout, scripts
from .facts import Container, Facts
from .release import upload_step, version_of

Kind = Literal["upload", "pull", "services", "migrate", "roll_up", "roll_open", "roll_drain",
               "secrets", "stack"]
"""`secrets` and `stack` are the Swarm engine's (`fabfile/swarm/plan.py`)."""
ChangeStatus = Literal["added", "changed", "removed", "unchanged"]


@dataclass(frozen=True)
class Action:
    """One step of a plan and what kind of step it is (the executor explains failures by it)."""

    kind: Kind
    step: Step


@dataclass(frozen=True)
class FileChange:
    """A release file compared with the host's current release. Env files hold secrets:
    only the names of changed keys are kept (`+KEY` added, `-KEY` removed, `~KEY` changed)."""

    path: str
    status: ChangeStatus
    secret: bool
    diff: str = ""
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostPlan:
    """What one host needs. `release` is where the stack ends up; `switch` says whether
    `current` moves to it; `old_ids` are the web containers the roll replaces."""

    host: str
    app_dir: str
    action: Literal["deploy", "rollback"]
    version: str
    release: str
    previous: str | None
    upload: bool
    switch: bool
    image: str
    images_before: tuple[str, ...]
    changes: tuple[FileChange, ...] = ()
    services: tuple[str, ...] = ()
    migrate: bool = False
    roll: bool = False
    old_ids: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()

    @property
    def noop(self) -> bool:
        return not self.actions and not self.switch

    @property
    def compose_file(self) -> str:
        return compose_path(self.release, self.app_dir)


def compose_path(release: str, app_dir: str) -> str:
    return f"{app_dir}/releases/{release}/compose.yml"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def env_line_hashes(content: str) -> dict[str, str]:
    """KEY -> sha256 of its whole line, as `facts.sh` computes them on the host."""
    out: dict[str, str] = {}
    for line in content.splitlines():
        if not line or line.startswith("#"):
            continue
        out[line.split("=", 1)[0]] = _sha(line)
    return out


def _is_secret(path: str) -> bool:
    return path.endswith(".env")


def file_changes(files: Sequence[RenderedFile], facts: Facts) -> tuple[FileChange, ...]:
    """Each rendered file against the current release (all `added` on a first deploy)."""
    out: list[FileChange] = []
    old_root = f"current ({facts.current})" if facts.current else "current"
    for f in files:
        secret = f.secret or _is_secret(f.path)
        old = facts.files.get(f.path) if facts.current else None
        if old is None:
            keys = tuple(f"+{k}" for k in env_line_hashes(f.content)) if secret else ()
            diff = "" if secret else "".join(difflib.unified_diff(
                [], f.content.splitlines(keepends=True), "/dev/null", f"new/{f.path}"))
            out.append(FileChange(f.path, "added", secret, diff, keys))
            continue
        if old.sha256 == _sha(f.content) and old.mode == f.mode:
            out.append(FileChange(f.path, "unchanged", secret))
            continue
        if secret:
            before = facts.env_lines.get(f.path, {})
            after = env_line_hashes(f.content)
            keys = tuple(sorted(
                [f"+{k}" for k in after.keys() - before.keys()]
                + [f"-{k}" for k in before.keys() - after.keys()]
                + [f"~{k}" for k in after.keys() & before.keys() if after[k] != before[k]],
                key=lambda k: k[1:]))
            if old.mode != f.mode:
                keys += (f"mode {old.mode:o} -> {f.mode:o}",)
            out.append(FileChange(f.path, "changed", True, "", keys))
            continue
        before_text = facts.contents.get(f.path, "")
        diff = "".join(difflib.unified_diff(
            before_text.splitlines(keepends=True), f.content.splitlines(keepends=True),
            f"{old_root}/{f.path}", f"new/{f.path}"))
        out.append(FileChange(f.path, "changed", False, diff))
    rendered = {f.path for f in files}
    if facts.current:
        for path in sorted(set(facts.files) - rendered):
            out.append(FileChange(path, "removed", _is_secret(path)))
    return tuple(out)


def _services(compose_text: str | None) -> dict[str, Any]:
    if not compose_text:
        return {}
    try:
        data = yaml.safe_load(compose_text)
    except yaml.YAMLError:
        return {}
    services = data.get("services") if isinstance(data, dict) else None
    return services if isinstance(services, dict) else {}


def fingerprint(services: Mapping[str, Any], name: str,
                env_hash: Callable[[str], str | None]) -> str | None:
    """A service's Compose block plus the hashes of the env files it reads."""
    block = services.get(name)
    if block is None:
        return None
    env_files = block.get("env_file") or []
    if isinstance(env_files, str):
        env_files = [env_files]
    parts = [json.dumps(block, sort_keys=True, default=str)]
    parts += [f"{p}={env_hash(str(p))}" for p in env_files]
    return _sha("\n".join(parts))


def normalize_image(ref: str) -> str:
    """As `docker image ls` shows it: implicit `:latest`, no `docker.io/library/` prefix."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
    if "@" not in ref and ":" not in ref.rsplit("/", 1)[-1]:
        ref += ":latest"
    return ref


def images(files: Sequence[RenderedFile]) -> dict[str, str]:
    """Service -> image of the rendered compose.yml."""
    compose = next((f.content for f in files if f.path == "compose.yml"), None)
    return {name: normalize_image(str(block.get("image", "")))
            for name, block in _services(compose).items() if block.get("image")}


def _web_reasons(cfg: Config, web: Sequence[Container], fp_new: str | None,
                 fp_cur: str | None) -> list[str]:
    """Why the web service must roll; empty when it already runs as configured."""
    if not web:
        return ["no web containers yet: first start"]
    reasons: list[str] = []
    if any(c.image != cfg.image_ref for c in web):
        before = ", ".join(sorted({c.image for c in web}))
        reasons.append(f"image {before} -> {cfg.image_ref}")
    elif fp_new != fp_cur:
        reasons.append("web configuration changed")
    serving = [c for c in web if c.serving]
    if len(web) != cfg.app.replicas:
        reasons.append(f"{len(web)} web containers, want {cfg.app.replicas}")
    elif len(serving) != len(web):
        reasons.append(f"{len(web) - len(serving)} of {len(web)} web containers not healthy")
    return reasons


@dataclass(frozen=True)
class Options:
    """The parts of a deploy plan that do not come from config or facts."""

    release_id: str
    token: str
    """The token of the run holding the host's lock: its phases run only while it does."""
    skip_migrations: bool = False
    skip_drain: bool = False
    skip_hold: bool = False
    gated: bool = False
    """Split the roll at the held, ready new containers (`rollout.roll_steps`)."""


def plan_deploy(cfg: Config, facts: Facts, files: Sequence[RenderedFile], host: str,
                opts: Options) -> HostPlan:
    """The steps that bring this host from `facts` to the rendered release."""
    app_dir, web_name = cfg.deploy.app_dir, cfg.app.name
    changes = file_changes(files, facts)
    same_files = facts.current is not None and all(c.status == "unchanged" for c in changes)
    release = facts.current if same_files and facts.current else opts.release_id
    upload = not same_files
    compose = compose_path(release, app_dir)

    new_services = _services(next(f.content for f in files if f.path == "compose.yml"))
    cur_services = _services(facts.contents.get("compose.yml")) if facts.current else {}
    rendered_sha = {f.path: _sha(f.content) for f in files}

    def fp_new(name: str) -> str | None:
        return fingerprint(new_services, name, rendered_sha.get)

    def fp_cur(name: str) -> str | None:
        if not cur_services:
            return None
        return fingerprint(cur_services, name,
                           lambda p: f.sha256 if (f := facts.files.get(p)) else None)

    web = facts.service(web_name)
    web_reasons = _web_reasons(cfg, web, fp_new(web_name), fp_cur(web_name))
    roll = bool(web_reasons)

    reasons = list(web_reasons)
    services: list[str] = []
    traefik_changed = any(c.path.startswith("traefik/") and c.status != "unchanged"
                          for c in changes)
    for name in new_services:
        if name == web_name:
            continue
        running = facts.service(name)
        if not running or not all(c.serving for c in running):
            services.append(name)
            reasons.append(f"{name} not running" if not running else f"{name} not healthy")
        elif fp_new(name) != fp_cur(name):
            services.append(name)
            reasons.append(f"{name} configuration changed")
        elif name == "traefik" and any(c.path == "traefik/traefik.yml"
                                       and c.status != "unchanged" for c in changes):
            services.append(name)
            reasons.append("traefik static configuration changed")
    if traefik_changed:
        reasons.append("traefik configuration files changed")
    if upload and not reasons:
        reasons.append("release files changed")

    migrate = roll and bool(cfg.app.migrate_command) and not opts.skip_migrations
    wanted = images(files)
    need = ([web_name] if roll or migrate else []) + services
    pull = [s for s in need if s in wanted and facts.images.get(wanted[s]) is False]

    actions: list[Action] = []
    if upload:
        actions.append(Action("upload", upload_step(app_dir, release, files)))
    if pull:
        actions.append(Action("pull", pull_step(cfg, sorted({wanted[s] for s in pull}))))
    if services or traefik_changed:
        actions.append(Action("services", services_step(cfg, compose, "only", services,
                                                        token=opts.token)))
    if migrate:
        actions.append(Action("migrate", scripts.phase(
            f"migrate: {' '.join(cfg.app.migrate_command)}",
            rollout.phase_lock(cfg, opts.token), "migrate", compose,
            web_name, *rollout.probe_args(cfg, cfg.image_ref), *cfg.app.migrate_command,
            timeout=None)))
    old_ids = tuple(c.id for c in web) if roll else ()
    if roll:
        actions += [Action(kind, step) for kind, step in rollout.roll_steps(
            cfg, compose, old_ids, token=opts.token, image=cfg.image_ref,
            skip_drain=opts.skip_drain, skip_hold=opts.skip_hold,
            gated=opts.gated and not migrate)]
    if not actions and not upload:
        reasons = []
    return HostPlan(
        host=host, app_dir=app_dir, action="deploy", version=cfg.app.tag, release=release,
        previous=facts.current, upload=upload, switch=release != facts.current,
        image=cfg.image_ref, images_before=tuple(sorted({c.image for c in web})),
        changes=changes, services=tuple(services), migrate=migrate, roll=roll,
        old_ids=old_ids, reasons=tuple(reasons), actions=tuple(actions))


def pull_step(cfg: Config, refs: Sequence[str]) -> Step:
    """Pull `refs` on the host; with `registry` credentials, logged in only for the pull
    (the password travels on stdin, the Docker config holding it is deleted right after)."""
    reg = cfg.registry
    login = (reg is not None and reg.password is not None
             and any(r.startswith(f"{reg.server}/") for r in refs))
    server, user, stdin = ("", "", None)
    if login:
        assert reg is not None and reg.password is not None and reg.username is not None
        server, user, stdin = reg.server, reg.username, reg.password.reveal().encode() + b"\n"
    return scripts.step(f"pull {', '.join(refs)}", "pull", cfg.deploy.app_dir, server, user,
                        *refs, stdin=stdin, timeout=1800)


def services_step(cfg: Config, compose: str, mode: Literal["only", "all-but"],
                  services: Sequence[str], *, token: str) -> Step:
    timeout = cfg.deploy.health_timeout
    title = ("services: " + (", ".join(services) if services else "traefik files")
             if mode == "only" else f"services: all but {', '.join(services)}")
    return scripts.phase(title, rollout.phase_lock(cfg, token), "services", cfg.deploy.app_dir,
                         compose, str(timeout), mode, *services, timeout=2 * timeout + 120)


def plan_rollback(cfg: Config, facts: Facts, target: str, host: str, *, token: str,
                  skip_drain: bool = False, web_ids: Sequence[str] | None = None,
                  previous: str | None = None) -> HostPlan:
    """Roll the stack back to release `target` (already on the host) with the same rolling
    procedure, under the lock `token` holds; migrations are not reversed. `web_ids`
    overrides the containers to replace (after a failed smoke test, the ones the deploy just
    started)."""
    app_dir, web_name = cfg.deploy.app_dir, cfg.app.name
    if target not in facts.release_ids:
        raise UserError(f"release {target} is not on {host}")
    compose = compose_path(target, app_dir)
    old_ids = tuple(web_ids) if web_ids is not None else tuple(
        c.id for c in facts.service(web_name))
    actions = [Action("services", services_step(cfg, compose, "all-but", [web_name],
                                                token=token))]
    actions += [Action(kind, step) for kind, step in rollout.roll_steps(
        cfg, compose, old_ids, token=token, skip_drain=skip_drain)]
    before = previous if previous is not None else facts.current
    return HostPlan(
        host=host, app_dir=app_dir, action="rollback", version=version_of(target), release=target,
        previous=before, upload=False, switch=target != facts.current, image="",
        images_before=tuple(sorted({c.image for c in facts.service(web_name)})),
        roll=True, old_ids=old_ids, reasons=(f"roll back from {before} to {target}",),
        actions=tuple(actions))


def as_data(plan: HostPlan) -> dict[str, Any]:
    """The plan as plain data: golden tests compare it, `--json` prints it."""
    def step_data(action: Action) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": action.kind, "name": action.step.name,
                                "argv": scripts.shown(action.step.argv)}
        if action.step.stdin is not None:
            data["stdin"] = ("the registry password" if action.kind == "pull"
                             else _describe_stdin(action.step.stdin))
        return data

    return {
        "host": plan.host, "action": plan.action, "version": plan.version,
        "release": plan.release, "previous": plan.previous, "upload": plan.upload,
        "switch": plan.switch, "image": plan.image, "images_before": list(plan.images_before),
        "services": list(plan.services), "migrate": plan.migrate, "roll": plan.roll,
        "old_ids": list(plan.old_ids), "reasons": list(plan.reasons), "noop": plan.noop,
        "changes": [{"path": c.path, "status": c.status, "secret": c.secret,
                     "keys": list(c.keys), "diff": c.diff.splitlines()} for c in plan.changes],
        "steps": [step_data(a) for a in plan.actions],
    }


def _describe_stdin(data: bytes) -> str:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = [f"{m.name} {m.mode:o}" for m in tar.getmembers() if m.isfile()]
        return "tar.gz: " + ", ".join(members)
    except tarfile.TarError:
        return f"{len(data)} bytes"
