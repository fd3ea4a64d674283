"""Plans as data: each case in `cases/` (a config, a host described as facts) must plan to
exactly its golden file in `golden/`. `UPDATE_GOLDEN=1` rewrites the golden files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from fabfile.deploy import facts, release
from fabfile.deploy.plan import Options, as_data, plan_deploy, plan_rollback
from fabfile.render import render_release
from tests.deploy.factgen import HERE, config, report

CASES = sorted(p.stem for p in (HERE / "cases").glob("*.yaml"))
RELEASE_ID = "20240601T120000Z-new"
TOKEN = "run-token"


def plan_for(name: str, tmp: Path) -> dict[str, Any]:
    case = yaml.safe_load((HERE / "cases" / f"{name}.yaml").read_text())
    overrides = dict(case.get("overrides") or {})
    if "version" in case:
        overrides.setdefault("app", {})["tag"] = case["version"]
    cfg = config(case["env"], tmp, overrides)
    found = facts.parse(report(cfg, case["host"], tmp))
    if "rollback" in case:
        target = release.resolve(found, case["rollback"])
        plan = plan_rollback(cfg, found, target, "host1", token=TOKEN)
    else:
        opts = Options(release_id=RELEASE_ID, token=TOKEN, **(case.get("options") or {}))
        plan = plan_deploy(cfg, found, render_release(cfg), "host1", opts)
    return {"description": case["description"], **as_data(plan)}


@pytest.mark.parametrize("name", CASES)
def test_plan_matches_golden(name: str, tmp_path: Path) -> None:
    got = json.dumps(plan_for(name, tmp_path), indent=2, sort_keys=False) + "\n"
    golden = HERE / "golden" / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(got)
    assert golden.exists(), f"no golden file {golden}: run with UPDATE_GOLDEN=1"
    assert got == golden.read_text(), f"plan for {name} differs from {golden}"


def test_every_golden_file_has_a_case() -> None:
    assert {p.stem for p in (HERE / "golden").glob("*.json")} == set(CASES)
