"""What a run that died left, and how the next one converges from it: pure, on facts reports
built from short descriptions (they go through the parser too)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from fabfile.config import Config
from fabfile.deploy import facts, reconcile, scripts
from tests.deploy.factgen import config, report

V1, V2 = "20240101T000000Z-v1", "20240102T000000Z-v2"
IMAGE = "shipyard-test/app"


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return config("unit", tmp_path, {"app": {"tag": "v2"}})


def host(cfg: Config, tmp: Path, containers: list[dict[str, Any]],
         current: str | None = V1) -> facts.Facts:
    releases = {V1: "live", V2: "staged"}
    return facts.parse(report(cfg, {
        "current": {"release": current, "tag": current.rsplit("-", 1)[1]} if current else None,
        "releases": releases if current else {V2: "staged"},
        "containers": containers}, tmp))


def web(prefix: str, release: str, tag: str, **extra: str) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "tag": tag, "release": release, **extra} for i in (1, 2)]


def test_nothing_to_do_when_the_containers_run_current(cfg: Config, tmp_path: Path) -> None:
    found = host(cfg, tmp_path, web("a", V1, "v1"))
    assert reconcile.mismatch(cfg, found) is None
    assert reconcile.plan_recovery(cfg, found, token="t", wanted_image=cfg.image_ref) is None
    assert reconcile.mismatch(cfg, host(cfg, tmp_path, [], current=None)) is None


def test_the_dead_runs_release_serving_alone_is_finished_without_a_roll(
        cfg: Config, tmp_path: Path) -> None:
    found = host(cfg, tmp_path, web("b", V2, "v2"))
    assert str(reconcile.mismatch(cfg, found)) == (
        f"`current` says {V1}, the containers run {V2}: a deploy was interrupted")
    rec = reconcile.plan_recovery(cfg, found, token="t", wanted_image=cfg.image_ref)
    assert rec is not None and rec.direction == "finish"
    assert (rec.release, rec.switch, rec.retire, rec.actions) == (V2, V2, (), ())
    assert "without rolling again" in rec.says


def test_a_dead_first_deploy_that_serves_is_finished(cfg: Config, tmp_path: Path) -> None:
    found = host(cfg, tmp_path, web("b", V2, "v2"), current=None)
    assert "`current` says nothing" in str(reconcile.mismatch(cfg, found))
    rec = reconcile.plan_recovery(cfg, found, token="t")
    assert rec is not None and (rec.direction, rec.switch) == ("finish", V2)


def test_both_serving_rolls_forward_by_draining_the_old(cfg: Config, tmp_path: Path) -> None:
    found = host(cfg, tmp_path, web("a", V1, "v1") + web("b", V2, "v2"))
    assert str(reconcile.mismatch(cfg, found)).startswith(
        f"`current` says {V1}, the containers run {V1} and {V2}")
    rec = reconcile.plan_recovery(cfg, found, token="run-token", wanted_image=cfg.image_ref)
    assert rec is not None and rec.direction == "forward"
    assert (rec.switch, rec.retire) == (V2, ("a1", "a2"))
    [action] = rec.actions
    shown = scripts.shown(action.step.argv)
    assert action.kind == "roll_drain" and shown[-2:] == ["a1", "a2"]
    assert "run-token" in shown and "<roll_drain.sh>" in shown
    assert rec.says.startswith("rolling forward")


def test_both_serving_rolls_back_when_this_run_wants_what_current_runs(
        cfg: Config, tmp_path: Path) -> None:
    found = host(cfg, tmp_path, web("a", V1, "v1") + web("b", V2, "v2"))
    rec = reconcile.plan_recovery(cfg, found, token="t", wanted_image=f"{IMAGE}:v1")
    assert rec is not None and rec.direction == "back"
    assert (rec.switch, rec.retire, rec.prune) == (None, ("b1", "b2"), (V2,))
    assert rec.says.startswith("rolling back")


@pytest.mark.parametrize("containers", [
    [*web("a", V1, "v1"), {"id": "b1", "tag": "v2", "release": V2},
     {"id": "b2", "tag": "v2", "release": V2, "health": "starting"}],
    [*web("a", V1, "v1"), {"id": "b1", "tag": "v2", "release": V2}],
    web("b", V2, "v3"),
], ids=["one-not-healthy", "one-missing", "image-not-the-release"])
def test_a_release_that_does_not_serve_fully_is_left_to_the_plan(
        cfg: Config, tmp_path: Path, containers: list[dict[str, Any]]) -> None:
    found = host(cfg, tmp_path, containers)
    rec = reconcile.plan_recovery(cfg, found, token="t", wanted_image=cfg.image_ref)
    assert rec is not None and rec.direction == "roll" and rec.actions == ()
    assert "rolls forward from what runs" in rec.says


def test_containers_made_outside_any_release_are_named_so(cfg: Config, tmp_path: Path) -> None:
    found = host(cfg, tmp_path, web("x", V2, "v2"))
    outside = dataclasses.replace(found, containers=tuple(
        dataclasses.replace(c, config_file="/elsewhere/compose.yml") for c in found.containers))
    assert "the containers run (no release)" in str(reconcile.mismatch(cfg, outside))
    rec = reconcile.plan_recovery(cfg, outside, token="t")
    assert rec is not None and rec.direction == "roll"
