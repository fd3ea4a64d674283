"""`config` namespace and the root `render` task: look at an environment without touching a host."""

from __future__ import annotations

import json as _json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from fabfile import PROJECT_ROOT
from fabfile.errors import UserError
from fabfile.tasks._adapter import friendly

if TYPE_CHECKING:
    from fabfile.render import RenderedFile

# The configuration loader, `fabfile.render` (jinja2) and `fabfile.ui` (rich) are imported
# inside the tasks: every task module imports this one for ENV_HELP.
ENV_HELP = "environment name: a file environments/<ENV>.yaml (local, staging, prod)"
RENDER_MARK = "Rendered by `inv render"


@task(help={"env": ENV_HELP, "json": "print JSON instead of YAML"})
@friendly
def show(c: Context, env: str, json: bool = False) -> None:
    """Print an environment's resolved configuration, secrets redacted."""
    import yaml

    from fabfile.config import load_config
    from fabfile.config.show import as_dict

    data = as_dict(load_config(env, placeholder_secrets=True))
    if json:
        print(_json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")


def write_release(files: tuple[RenderedFile, ...], out: Path) -> None:
    """Write rendered files under `out`; refuse to overwrite a file we did not render."""
    for f in files:
        target = out / f.path
        if target.exists() and RENDER_MARK not in target.read_text(errors="replace")[:400]:
            raise UserError(f"{target} exists and was not written by `inv render`: "
                            "choose an empty --out directory")
    for f in files:
        target = out / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, f.mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f.content)
        os.chmod(target, f.mode)


@task(help={
    "env": ENV_HELP,
    "out": "directory to write into (default: rendered/<ENV>)",
    "placeholder_secrets": "render missing secrets as placeholders (to validate in CI)",
})
@friendly
def render(c: Context, env: str, out: str = "", placeholder_secrets: bool = False) -> None:
    """Render Compose, Traefik and env files for an environment into a directory."""
    from fabfile import ui
    from fabfile.config import load_config
    from fabfile.render import render_release

    cfg = load_config(env, placeholder_secrets=placeholder_secrets)
    target = Path(out) if out else PROJECT_ROOT / "rendered" / env
    files = render_release(cfg)
    write_release(files, target)
    rows = [[f.path, f"{f.mode:o}", str(len(f.content.encode()))] for f in files]
    ui.console.print(ui.table(f"rendered {env} into {target}", ["file", "mode", "bytes"], rows))


namespace = Collection("config")
namespace.add_task(show, name="show")
