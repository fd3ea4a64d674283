"""Run a build: resolve the sources, log in where the image goes, run BuildKit, sum it up.

The registry login happens in a throwaway Docker config (`DOCKER_CONFIG`), the password
handed to `docker login --password-stdin`, and the directory is removed when the build
ends, failed or not: nothing is left in the operator's (or the CI runner's) `~/.docker`.
The throwaway config links the real one's `cli-plugins`, `buildx` and `contexts`, so the
buildx plugin and the selected builder are still found.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fabfile import hooks, ui
from fabfile.config import Config
from fabfile.config import checks as config_checks
from fabfile.config.secrets import redact
from fabfile.deploy.lock import operator
from fabfile.errors import UserError

from . import plan, source

_STEP = re.compile(r"^#(\d+) (.*)$")
_TITLE = re.compile(r"^\[[^\]]+\] ")
LINKED = ("cli-plugins", "buildx", "contexts")


@dataclass
class Options:
    version: str | None = None
    push: bool = True
    allow_dirty: bool = False
    cache: plan.CacheMode = "registry"


@dataclass
class Summary:
    """What a build made, for the table at the end (and the tests and benchmark)."""

    image: str
    tag: str
    pushed: bool
    digest: str = ""
    size: int | None = None
    seconds: float = 0.0
    steps: int = 0
    cached: int = 0
    rebuilt: tuple[str, ...] = ()
    """The build steps that ran (not from cache), as buildx names them."""
    dirty: tuple[str, ...] = ()
    cache_found: bool | None = None
    """Whether the registry had a cache image (docker driver); None when not looked for."""

    @property
    def ref(self) -> str:
        return f"{self.image}:{self.tag}"


@dataclass
class _Log:
    """buildx's plain progress, by step: `#N [stage k/n] INSTRUCTION`, `#N CACHED`, ..."""

    titles: dict[str, str] = field(default_factory=dict)
    lines: dict[str, list[str]] = field(default_factory=dict)
    cached: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def add(self, line: str) -> str | None:
        """Record a line; returns the title of a step that starts with it."""
        match = _STEP.match(line)
        if not match:
            if line.startswith(("ERROR", "error:")):
                self.errors.append(line)
            self.other.append(line)
            return None
        step, text = match.groups()
        self.lines.setdefault(step, []).append(text)
        if step not in self.titles and _TITLE.match(text):
            self.titles[step] = text
            return text
        if text == "CACHED":
            self.cached.add(step)
        elif text.startswith("ERROR"):
            self.errors.append(f"#{step} {text}")
        return None

    def failed_step(self) -> str | None:
        for step, lines in self.lines.items():
            if any(line.startswith("ERROR") for line in lines):
                return step
        return None


def resolve(cfg: Config) -> tuple[Path, Path, dict[str, Path]]:
    """The context, the Dockerfile and the secret files, checked to exist."""
    root = Path(cfg.root or ".")
    b = cfg.app.build
    context = (root / b.context).resolve()
    dockerfile = (root / b.dockerfile).resolve() if b.dockerfile else context / "Dockerfile"
    if not context.is_dir():
        raise UserError(f"app.build.context {b.context!r} is not a directory under {root}")
    if not dockerfile.is_file():
        raise UserError(f"no Dockerfile at {dockerfile}: set app.build.dockerfile")
    secrets: dict[str, Path] = {}
    for key, value in b.secrets.items():
        path = Path(value).expanduser()
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise UserError(f"app.build.secrets.{key}: {path} is not a file")
        secrets[key] = path
    return context, dockerfile, secrets


def _driver() -> str:
    proc = subprocess.run(["docker", "buildx", "inspect"], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        if "is not a docker command" in proc.stderr or "unknown command" in proc.stderr:
            raise UserError("docker buildx is not installed: install the buildx plugin "
                            "(Debian/Ubuntu: the docker-buildx or docker-buildx-plugin "
                            "package); the classic builder is deprecated and not used")
        raise UserError(f"docker buildx does not work here: {proc.stderr.strip()[-300:]}")
    match = re.search(r"^Driver:\s*(\S+)", proc.stdout, re.MULTILINE)
    return match.group(1) if match else "docker"


@contextmanager
def docker_config(cfg: Config, login: bool) -> Iterator[dict[str, str]]:
    """The environment for `docker`: with `login`, a throwaway DOCKER_CONFIG logged in to
    the registry, removed afterwards whatever happens."""
    env = dict(os.environ)
    reg = cfg.registry
    if not login or reg is None or reg.password is None or reg.username is None:
        yield env
        return
    if reg.password.placeholder:
        raise UserError(f"logging in to {reg.server} needs the secret {reg.password.name}: set "
                        "it in the environment (CI: the job's env) or the .env file")
    real = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-docker-"))
    try:
        tmp.chmod(0o700)
        for name in LINKED:
            if (real / name).exists():
                (tmp / name).symlink_to(real / name)
        env["DOCKER_CONFIG"] = str(tmp)
        proc = subprocess.run(
            ["docker", "login", "--username", reg.username, "--password-stdin", reg.server],
            input=reg.password.reveal() + "\n", capture_output=True, text=True, env=env,
            check=False)
        if proc.returncode != 0:
            why = redact(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "")
            raise UserError(f"logging in to {reg.server} as {reg.username} failed ({why}): "
                            f"check the secret {reg.password.name}")
        yield env
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _request(cfg: Config, opts: Options, src: source.Source | None, metadata: Path,
             driver: str) -> plan.Request:
    context, dockerfile, secrets = resolve(cfg)
    tag = opts.version or (src.tag if src else "")
    problem = config_checks.tag(tag)
    if problem:
        raise UserError(f"--version={tag!r}: expected {problem}")
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = plan.labels(src.revision if src else "unknown", src.url if src else "unknown",
                         created)
    b = cfg.app.build
    return plan.Request(
        image=cfg.app.image, tag=tag, context=context, dockerfile=dockerfile,
        metadata_file=metadata, labels=labels, target=b.target, args=b.args,
        platform=b.platform, secrets=secrets, push=opts.push, cache=opts.cache, driver=driver)


def _source(cfg: Config, opts: Options) -> source.Source | None:
    context, dockerfile, _ = resolve(cfg)
    try:
        src = source.inspect(context, dockerfile)
    except UserError:
        if opts.version:
            return None
        raise
    if src.dirty and not opts.allow_dirty:
        shown = ", ".join(src.dirty[:5]) + (f" and {len(src.dirty) - 5} more"
                                           if len(src.dirty) > 5 else "")
        raise UserError(f"the build context has changes that are not committed ({shown}): an "
                        f"image tagged {src.revision[:12]} would not be that commit. Commit "
                        "them, or pass --allow-dirty to tag it "
                        f"{src.revision[:12]}...-dirty-{src.diff_hash}")
    return src


def build(cfg: Config, opts: Options) -> Summary:
    """Build (and push) the app image; raise UserError saying what failed."""
    if opts.push and opts.cache == "gha" and "ACTIONS_RUNTIME_TOKEN" not in os.environ:
        raise UserError("--cache=gha works only inside GitHub Actions (ACTIONS_RUNTIME_TOKEN "
                        "is not set): use --cache=registry here")
    src = _source(cfg, opts)
    driver = _driver()
    if opts.cache == "gha" and driver == "docker":
        raise UserError("--cache=gha needs a docker-container builder (docker buildx create "
                        "--use, or setup-buildx-action in CI); the default `docker` builder "
                        "exports inline cache only: use --cache=registry")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="shipyard-build-") as tmp:
        metadata = Path(tmp) / "metadata.json"
        req = _request(cfg, opts, src, metadata, driver)
        hook = hooks.Hooks(cfg, "build", version=req.tag, performer=operator())
        hook.pre()
        try:
            summary = _build(cfg, opts, req, src, started)
        except (UserError, KeyboardInterrupt) as exc:
            hook.post("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                      exc.message if isinstance(exc, UserError) else "")
            raise
    hook.post("success")
    return summary


def _build(cfg: Config, opts: Options, req: plan.Request, src: source.Source | None,
           started: float) -> Summary:
    """The build itself (and its push), summed up."""
    summary = Summary(image=req.image, tag=req.tag, pushed=req.push,
                      dirty=src.dirty if src else ())
    login = opts.push or opts.cache == "registry"
    with docker_config(cfg, login) as env:
        pull = plan.cache_pull(req)
        if pull:
            with ui.console.status(f"pulling the build cache {req.cache_ref}"):
                pulled = subprocess.run(pull, env=env, capture_output=True, text=True,
                                        check=False)
            summary.cache_found = pulled.returncode == 0
            if not summary.cache_found and "not found" not in pulled.stderr \
                    and "unknown" not in pulled.stderr:
                ui.warn(f"could not pull the build cache {req.cache_ref}: "
                        f"{redact(pulled.stderr.strip()[-300:])}")
        log = _run(plan.argv(req), env, req.ref)
    summary.seconds = time.monotonic() - started
    summary.steps, summary.cached = len(log.titles), len(log.cached & set(log.titles))
    summary.rebuilt = tuple(title for step, title in log.titles.items()
                            if step not in log.cached and not title.startswith("[internal]")
                            and " FROM " not in f" {title}")
    if req.metadata_file.exists():
        data = json.loads(req.metadata_file.read_text() or "{}")
        summary.digest = str(data.get("containerimage.digest", ""))
    summary.size = _size(req.ref)
    return summary


def _run(argv: list[str], env: dict[str, str], ref: str) -> _Log:
    log = _Log()
    with ui.console.status(f"building {ref}") as status:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace", env=env)
        assert proc.stdout is not None
        for raw in proc.stdout:
            title = log.add(raw.rstrip("\n"))
            if title:
                status.update(f"building {ref}: {title[:100]}")
        code = proc.wait()
    if code != 0:
        raise UserError(_failure(log, ref, code))
    return log


def _failure(log: _Log, ref: str, code: int) -> str:
    step = log.failed_step()
    if step is not None:
        title = log.titles.get(step, f"step #{step}")
        tail = [re.sub(r"^\d+\.\d+ ", "", line) for line in log.lines[step][-25:]]
        return redact(f"building {ref} failed at {title} (exit {code}). Its output:\n    "
                      + "\n    ".join(tail))
    detail = "\n    ".join((log.errors or log.other)[-15:]) or "no output"
    return redact(f"building {ref} failed (exit {code}):\n    {detail}")


def _size(ref: str) -> int | None:
    proc = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", ref],
                          capture_output=True, text=True, check=False)
    return int(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None
