"""After a run that died: what `current` says against what the web containers run, and how
the next run converges from there without rolling again what already rolled. Pure.

A deploy (or rollback) that died may have got anywhere: uploaded its release, migrated,
started its new containers beside the old ones, drained the old ones (its detached phases
carry on without it), or done all of that but switch `current`. The containers tell: each
carries the release whose compose.yml made it (Compose's config-files label) and its image.

- The dead run's release R serves alone: `replicas` running, healthy containers of R's
  version. The run is finished: smoke test, `current` -> R, audit, prune. Nothing rolls.
- R serves fully beside other containers (the old ones, when the run died before its drain):
  its roll is completed (roll forward): the others are drained and removed, then the run is
  finished as above. When this run wants exactly what `current`'s containers run, and they
  still serve fully, R's containers are drained and removed instead (roll back).
- Anything else (R never served, or only partly): nothing to finish; the deploy's own plan
  rolls from what runs, as it would from any state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from fabfile.config import Config

from . import release, rollout
from .facts import Container, Facts, Release
from .plan import Action

Direction = Literal["finish", "forward", "back", "roll"]
OUTSIDE = "(no release)"
"""How containers that no release's compose.yml made are named."""


@dataclass(frozen=True)
class Mismatch:
    """`current` names one release while the running web containers come from another."""

    current: str | None
    running: tuple[str, ...]

    def __str__(self) -> str:
        says = self.current or "nothing (no release is live yet)"
        return (f"`current` says {says}, the containers run {' and '.join(self.running)}: "
                "a deploy was interrupted")


def mismatch(cfg: Config, facts: Facts) -> Mismatch | None:
    """The mismatch between `current` and the running web containers; None when they agree
    (or nothing runs)."""
    running = sorted({c.release or OUTSIDE for c in facts.service(cfg.app.name)
                      if c.state == "running"})
    if not running or running == [facts.current]:
        return None
    return Mismatch(facts.current, tuple(running))


@dataclass(frozen=True)
class Recovery:
    """How this run converges from what a dead run left, before its own plan."""

    found: Mismatch
    direction: Direction
    says: str
    release: str | None = None
    """The dead run's release, when it serves fully."""
    retire: tuple[str, ...] = ()
    """Web containers to drain, stop and remove."""
    switch: str | None = None
    prune: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()


def serves_fully(cfg: Config, rid: str, containers: Sequence[Container]) -> bool:
    """`replicas` containers of release `rid`, each running, healthy, on an image of the
    release's version (the tag its id ends with)."""
    version = release.version_of(rid)
    return (len(containers) == cfg.app.replicas
            and all(c.serving and c.image.rsplit(":", 1)[-1] == version for c in containers))


def plan_recovery(cfg: Config, facts: Facts, *, token: str,
                  wanted_image: str | None = None) -> Recovery | None:
    """What to do about a mismatch (None when there is none). `wanted_image` is what this run
    deploys (None for a rollback: it goes on from the finished run)."""
    found = mismatch(cfg, facts)
    if found is None:
        return None
    web = facts.service(cfg.app.name)
    by_release: dict[str | None, list[Container]] = defaultdict(list)
    for c in web:
        by_release[c.release].append(c)
    full = [r for r in found.running if r not in (facts.current, OUTSIDE)
            and r in facts.release_ids and serves_fully(cfg, r, by_release[r])]
    if len(full) != 1:
        return Recovery(found, "roll", "no other release serves on all its containers: "
                        "nothing to finish; the deploy rolls forward from what runs")
    rid = full[0]
    ours = by_release[rid]
    others = tuple(c.id for c in web if c.release != rid)
    cur = facts.current
    old = by_release.get(cur, []) if cur else []
    if (others and cur and wanted_image and serves_fully(cfg, cur, old)
            and all(c.image == wanted_image for c in old)
            and not all(c.image == wanted_image for c in ours)):
        ids = tuple(c.id for c in ours)
        return Recovery(
            found, "back", f"rolling back: `current` ({cur}) still serves and runs "
            f"{wanted_image}, what this run deploys; draining and removing the {len(ids)} "
            f"containers of {rid}", release=rid, retire=ids, prune=(rid,),
            actions=(Action("roll_drain", rollout.drain_step(
                cfg, ids, token=token, what="interrupted")),))
    prune = tuple(release.to_prune([*facts.releases, Release(rid, True)], rid,
                                   cfg.deploy.keep_releases))
    if others:
        return Recovery(
            found, "forward", f"rolling forward: its release {rid} serves on {len(ours)} "
            f"healthy containers beside {len(others)} others; draining and removing those, "
            f"then `current` -> {rid}", release=rid, retire=others, switch=rid, prune=prune,
            actions=(Action("roll_drain", rollout.drain_step(
                cfg, others, token=token, what="old")),))
    return Recovery(
        found, "finish", f"finishing it: its release {rid} serves on {len(ours)} healthy "
        f"containers; smoke test, then `current` -> {rid}, without rolling again",
        release=rid, switch=rid, prune=prune)
