"""The root `build` task and the `registry` namespace: the app image, from commit to registry."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from fabfile.errors import UserError
from fabfile.tasks._adapter import friendly
from fabfile.tasks.config import ENV_HELP

# `fabfile.build` (subprocess, rich), `fabfile.registry` (httpx) and the configuration loader
# are imported inside the tasks, only when they run. Both tasks need only the registry's
# secret: the environment's other secrets load as placeholders (a CI build job has none).
CACHE_MODES = ("registry", "gha", "none")


@task(help={
    "env": ENV_HELP,
    "version": "image tag (default: the full commit SHA of the build context's repository)",
    "push": "push the image to the environment's registry (default); --no-push keeps it in "
            "the local Docker Engine",
    "allow_dirty": "build a tree with uncommitted changes, tagged <sha>-dirty-<hash of them>",
    "cache": "where the build cache lives: registry (default; IMAGE:buildcache), gha "
             "(GitHub Actions' cache, docker-container builder) or none",
})
@friendly
def build(c: Context, env: str, version: str = "", push: bool = True,
          allow_dirty: bool = False, cache: str = "registry") -> None:
    """Build the app image with BuildKit, tagged with the commit."""
    from fabfile import ui
    from fabfile.build import run
    from fabfile.config import load_config

    if cache not in CACHE_MODES:
        raise UserError(f"--cache={cache!r}: expected one of {', '.join(CACHE_MODES)}")
    cfg = load_config(env, placeholder_secrets=True)
    if push and cfg.registry is None:
        raise UserError(f"{env} has no registry to push to (environments/{env}.yaml has no "
                        "`registry:`): pass --no-push to keep the image local, or set "
                        "registry.server, registry.username and registry.password")
    summary = run.build(cfg, run.Options(version=version or None, push=push,
                                         allow_dirty=allow_dirty, cache=cache))  # type: ignore[arg-type]
    size = f"{summary.size / 1e6:.0f} MB" if summary.size else "-"
    found = {None: "", True: " (cache image pulled)",
             False: " (no cache image in the registry yet)"}[summary.cache_found]
    rows = [["image", summary.image], ["tag", summary.tag],
            ["digest", summary.digest or "-"], ["size", size],
            ["steps from cache", f"{summary.cached} of {summary.steps}{found}"],
            ["rebuilt", "\n".join(t[:90] for t in summary.rebuilt) or "nothing"],
            ["time", f"{summary.seconds:.1f}s"],
            ["pushed", "yes" if summary.pushed else "no (local Docker Engine only)"]]
    if summary.dirty:
        rows.append(["uncommitted", ", ".join(summary.dirty[:5])])
    ui.console.print(ui.table(f"built {summary.ref}", ["", ""], rows))


@task(help={"env": ENV_HELP,
            "version": "image tag to look for (default: app.tag from the environment's YAML)"})
@friendly
def check(c: Context, env: str, version: str = "") -> None:
    """Confirm an image tag exists in the environment's registry."""
    from fabfile import registry, ui
    from fabfile.config import load_config
    from fabfile.tasks.deploy import with_version

    cfg = with_version(load_config(env, placeholder_secrets=True), version)
    if cfg.registry is None:
        raise UserError(f"{env} has no registry: its images are public, nothing to check")
    found = registry.require(cfg, cfg.app.tag)
    assert found is not None
    ui.ok(f"{cfg.image_ref} is in {cfg.registry.server} ({found.digest or 'no digest given'})")


namespace = Collection("registry")
namespace.add_task(check)
