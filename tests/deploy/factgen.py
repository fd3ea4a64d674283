"""Build `facts.sh` reports from short descriptions, so plan tests are data and exercise the
parser too. The current release's files are rendered from the config the case describes."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import yaml

from fabfile.config import Config, load_config
from fabfile.deploy.plan import images
from fabfile.heal.plan import fingerprint
from fabfile.render import render_release
from tests.helpers import deep_merge

HERE = Path(__file__).parent
ENVIRONMENTS = HERE / "environments"
_WRITING = threading.Lock()
SECRETS = {
    "UNIT_DATABASE_URL": "postgresql://app:unit-pw@db.example.com:5432/app?sslmode=require",
    "EDGE_DB_PASSWORD": "edge-pw-1234",
}




def config(env: str, tmp: Path, overrides: dict[str, Any] | None = None,
           secrets: dict[str, str] | None = None) -> Config:
    """The test environment `env`, with `overrides` deep-merged into its YAML."""
    data = yaml.safe_load((ENVIRONMENTS / f"{env}.yaml").read_text())
    key = hashlib.sha256(json.dumps([env, overrides], sort_keys=True).encode()).hexdigest()
    root = tmp / f"env-{key[:12]}"
    with _WRITING:
        root.mkdir(parents=True, exist_ok=True)
        (root / f"{env}.yaml").write_text(yaml.safe_dump(deep_merge(data, overrides or {})))
        return load_config(env, root=root, environ={**SECRETS, **(secrets or {})})


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def report(cfg: Config, host: dict[str, Any], tmp: Path) -> str:
    """A facts report for `host` (see the cases' `host:` keys). `watcher`: `current` (the
    default: the self-healing watcher this config installs, running), `stopped`, `other`
    (another install's fingerprint) or null (none installed)."""
    lines = ["@facts 1", f"docker {host.get('docker', '20.10.24+dfsg1')}",
             f"compose {host.get('compose', '2.26.1-4')}"]
    if not host.get("app_dir", True):
        return "\n".join([*lines, "app_dir missing", "@end"]) + "\n"
    lines += ["app_dir present", "disk_free_kb 1000000", f"lock {host.get('lock', 'taken')}"]
    if host.get("holder"):
        lines.append(f"holder {_b64(json.dumps(host['holder']))}")
    lines.append(f"network {'present' if host.get('network', True) else 'missing'}")
    for rid, state in sorted((host.get("releases") or {}).items()):
        lines.append(f"release {rid} {state}")
    current = host.get("current")
    if current:
        lines.append(f"current {current['release']}")
        over = copy.deepcopy(current.get("overrides") or {})
        over.setdefault("app", {})["tag"] = current["tag"]
        old = config(cfg.env, tmp, over, current.get("secrets"))
        for f in render_release(old):
            digest = hashlib.sha256(f.content.encode()).hexdigest()
            lines.append(f"file {digest} {f.mode:o} {f.path}")
            if f.path.endswith(".env"):
                for line in f.content.splitlines():
                    if line and not line.startswith("#"):
                        key = line.split("=", 1)[0]
                        lines.append(f"envline {key} {hashlib.sha256(line.encode()).hexdigest()}"
                                     f" {f.path}")
            else:
                lines.append(f"content {_b64(f.content)} {f.path}")
    for i, c in enumerate(host.get("containers") or [], 1):
        image = c.get("image") or f"{cfg.app.image}:{c['tag']}"
        service = c.get("service", cfg.app.name)
        lines.append(
            f"container {c['id']} {service} {c.get('oneoff', 'False')} "
            f"{c.get('state', 'running')} {c.get('health', 'healthy')} 2024-01-01T00:00:00Z "
            f"/{cfg.project}-{service}-{i} {image} "
            f"{cfg.deploy.app_dir}/releases/{c['release']}/compose.yml")
    watcher = host.get("watcher", "current")
    if watcher:
        fp = fingerprint(cfg) if watcher == "current" else "0" * 16
        lines.append(f"watcher {fp} {'stopped' if watcher == 'stopped' else 'running'} cron")
    missing = set(host.get("missing_images") or [])
    for ref in sorted(set(images(render_release(cfg)).values())):
        lines.append(f"image {'missing' if ref in missing else 'present'} {ref}")
    if host.get("audit"):
        lines.append(f"audit {_b64(json.dumps(host['audit']))}")
    lines.append("@end")
    return "\n".join(lines) + "\n"
