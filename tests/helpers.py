"""Small helpers shared by tests: temp environment trees and running the real `inv` CLI."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from fabfile import ENVIRONMENTS_DIR, PROJECT_ROOT

INV = str(Path(sys.executable).with_name("inv"))

#: Every secret the shipped environments name, with harmless values.
DUMMY_SECRETS = {
    "SENTRY_DSN": "https://key@sentry.example/1",
    "STAGING_DATABASE_URL": "postgresql://app:stg-pw@db.example:5432/app?sslmode=require",
    "PROD_DATABASE_URL": "postgresql://app:prod-pw@db.example:5432/app?sslmode=require",
    "STAGING_BACKUP_ACCESS_KEY_ID": "AKIASTAGING",
    "STAGING_BACKUP_SECRET_ACCESS_KEY": "staging-secret-key",
    "PROD_BACKUP_ACCESS_KEY_ID": "AKIAPROD",
    "PROD_BACKUP_SECRET_ACCESS_KEY": "prod-secret-key",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.example/T000/B000/XXXX",
    "LOCAL_POSTGRES_PASSWORD": "local-pw-0000",
    "GHCR_TOKEN": "ghcr-token-0000",
}


def env_tree(tmp_path: Path, overrides: dict[str, Any] | None = None) -> Path:
    """Copy the shipped environments to tmp_path/environments, deep-merging `overrides`.

    `overrides` maps a file stem (e.g. "prod") to data merged over that file; a value of
    None removes the file.
    """
    root = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, root)
    for stem, data in (overrides or {}).items():
        path = root / f"{stem}.yaml"
        if data is None:
            path.unlink()
            continue
        current = yaml.safe_load(path.read_text()) if path.exists() else {}
        path.write_text(yaml.safe_dump(deep_merge(current or {}, data), sort_keys=False))
    return root


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with `over` merged in: mappings merge, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def run_inv(
    *args: str, env_dir: Path | None = None, extra_env: dict[str, str] | None = None,
    timeout: float = 600, input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real `inv` CLI from the project root, as an operator would."""
    env = {k: v for k, v in os.environ.items() if k not in DUMMY_SECRETS}
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    if env_dir is not None:
        env["DEPLOY_ENVIRONMENTS_DIR"] = str(env_dir)
    env.update(extra_env or {})
    return subprocess.run([INV, *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, input=input_text, check=False)
