"""The web service's rolling update without a failed request (DESIGN.md, "Zero-downtime
behind Traefik"), as two phases that each poll inside one remote script:

1. `roll_up.sh`: `docker compose up -d --no-deps --no-recreate --scale web=OLD+N web` starts N
   new containers beside the old ones, held out of the proxy's pool (a hold file their
   healthcheck tests) until the check's probe passes in each and `deploy.verify.paths` answer
   2xx from each; then the hold is lifted and they turn healthy (fail fast on exits and
   unhealthy, bounded by health_timeout + start_period). On failure or interrupt: retire the
   new ones (drained like the old, since the proxy may already route to the healthy ones).
2. `roll_drain.sh`: create the drain file in each old container so its healthcheck fails,
   wait until Docker reports it unhealthy (the proxy drops it on that event), wait the
   proxy's throttle plus a margin, `docker stop -t GRACE`, then `docker rm`, by id.

Compose never scales down here: it would remove the newest containers. Both phases run
detached from the connection (`phase.sh`), so an interrupted operator cannot leave one
half done; `finish.sh` signals a phase that lost its operator: the first retires the new
containers, the second ignores the signal and completes (undoing a drain would fail
requests).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Literal

from fabfile import healthcheck
from fabfile.config import Config
from fabfile.remote import Step

from . import scripts

SKIP_DRAIN_VAR = "SHIPYARD_UNSAFE_SKIP_DRAIN"
"""TEST-ONLY: `=1` stops old containers without draining them first, so the zero-downtime
test can show that it would catch failed requests. Never set it for a real deploy."""


def unsafe_skip_drain(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(SKIP_DRAIN_VAR) == "1"


SKIP_HOLD_VAR = "SHIPYARD_UNSAFE_SKIP_HOLD"
"""TEST-ONLY: `=1` lets new containers into the proxy's pool as soon as they are healthy,
verifying them only afterwards, so the zero-downtime test can show the hold matters."""


def unsafe_skip_hold(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(SKIP_HOLD_VAR) == "1"


def lock_dir(cfg: Config) -> str:
    return f"{cfg.deploy.app_dir}/lock"


def phase_lock(cfg: Config, token: str) -> scripts.PhaseLock:
    """The lock this run's phases run under (`token`: the run's), with their heartbeat."""
    return scripts.PhaseLock(lock_dir(cfg), token, cfg.deploy.heartbeat)


def up_timeout(cfg: Config) -> int:
    """How long new containers may take to turn healthy."""
    return cfg.deploy.health_timeout + cfg.app.healthcheck.start_period


def ready_grace(cfg: Config) -> int:
    """How long a held container's probe may keep failing: when Docker would have called it
    unhealthy (its start period, then `retries` failed probes)."""
    hc = cfg.app.healthcheck
    return hc.start_period + (hc.interval + hc.timeout) * hc.retries


def unhealthy_timeout(cfg: Config) -> int:
    """How long a drained container may take to fail `retries` probes in a row."""
    hc = cfg.app.healthcheck
    return (hc.interval + hc.timeout) * (hc.retries + 2) + 5


def settle(cfg: Config) -> float:
    """Seconds between 'unhealthy' and the stop: the proxy's throttle plus a margin."""
    return cfg.deploy.traefik_throttle + cfg.deploy.drain_margin


def drain_bound(cfg: Config) -> float:
    """The longest the drain phase may take: unhealthy wait, settle, graceful stop."""
    return unhealthy_timeout(cfg) + settle(cfg) + cfg.app.stop_grace_period + 30


def probe_args(cfg: Config, image: str) -> tuple[str, str, str]:
    """`health_probe`'s arguments (lib.sh): where passed checks are remembered, the image,
    and the check (its form on the first line, then its words). No image: no probe (a
    rollback goes back to a release whose check already ran)."""
    check = healthcheck.probe(cfg)
    spec = "\n".join((check.form, *check.argv)) if image else ""
    return f"{cfg.deploy.app_dir}/cache/healthcheck", image, spec


def verify_args(cfg: Config) -> tuple[str, str, str, str]:
    """`verify`'s arguments (lib.sh): the network, the app's port, the timeout per request
    and the paths, one a line."""
    paths = cfg.deploy.verify.paths or (cfg.app.health_path,)
    return (cfg.deploy.network, str(cfg.app.port), f"{cfg.deploy.verify.timeout:g}",
            "\n".join(paths))


def roll_steps(cfg: Config, compose: str, old_ids: Sequence[str], *, token: str,
               image: str = "", skip_drain: bool = False, skip_hold: bool = False,
               gated: bool = False,
               ) -> list[tuple[Literal["roll_up", "roll_open", "roll_drain"], Step]]:
    """The phases rolling the web service from `old_ids` to `compose`'s configuration, under
    the lock `token` holds; the first checks that `image` can run the healthcheck before it
    starts anything. GATED: the start stops once the new containers are ready and held
    (`roll_up`), and `roll_open` verifies and releases them, so the caller may do work in
    between (`db.cutover`); only where a hold keeps them out of the pool (a shell-form
    check) and old containers serve meanwhile, else the roll is one step as usual."""
    n, web = cfg.app.replicas, cfg.app.name
    what = f"{n} new container{'s' * (n != 1)}"
    title = (f"web: start {what} beside {len(old_ids)} old, wait until healthy" if old_ids
             else f"web: start {what}, wait until healthy")
    hold = (healthcheck.hold_file(cfg) or "") if image and not skip_hold else ""
    gated = gated and bool(hold) and bool(old_ids)
    if gated:
        title = f"web: start {what} beside {len(old_ids)} old, held until ready"
    retire = (cfg.app.drain_file, f"{settle(cfg):g}", str(cfg.app.stop_grace_period),
              str(unhealthy_timeout(cfg)))
    lock = phase_lock(cfg, token)

    def roll_up(stage: str, title: str) -> Step:
        return scripts.phase(
            title, lock, "roll_up", compose, cfg.project, web, str(n),
            str(up_timeout(cfg)), *retire, *probe_args(cfg, image), *verify_args(cfg), hold,
            str(ready_grace(cfg)), stage, *old_ids,
            timeout=up_timeout(cfg) + drain_bound(cfg) + 60)

    steps: list[tuple[Literal["roll_up", "roll_open", "roll_drain"], Step]] = [
        ("roll_up", roll_up("held" if gated else "all", title))]
    if gated:
        steps.append(("roll_open", roll_up("open", f"web: verify and release the {what}, "
                                                   "wait until healthy")))
    if old_ids:
        steps.append(("roll_drain", drain_step(cfg, old_ids, token=token,
                                               skip_drain=skip_drain)))
    return steps


def drain_step(cfg: Config, ids: Sequence[str], *, token: str, skip_drain: bool = False,
               what: str = "old") -> Step:
    """The phase taking containers `ids` out of the proxy's pool, then stopping and removing
    them (`roll_drain.sh`): the old ones of a roll, or what a dead run left (`what`)."""
    drain = "stop WITHOUT draining (test-only)" if skip_drain else "drain, stop"
    return scripts.phase(
        f"web: {drain} {len(ids)} {what} container{'s' * (len(ids) != 1)}",
        phase_lock(cfg, token), "roll_drain", cfg.project, cfg.app.name, cfg.app.drain_file,
        f"{settle(cfg):g}", str(cfg.app.stop_grace_period), str(unhealthy_timeout(cfg)),
        "1" if skip_drain else "0", *ids, timeout=drain_bound(cfg) + 60)


def abort_wait(cfg: Config) -> float:
    """How long `finish.sh` waits for an interrupted phase to undo or complete itself."""
    if cfg.deploy.engine == "swarm":
        from fabfile.swarm.plan import converge_timeout

        return 2 * converge_timeout(cfg) + 30
    return 2 * drain_bound(cfg) + 30


def markers(output: str) -> dict[str, list[str]]:
    """The `@key value` lines a script prints, by key (last value wins in `[-1]`)."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        if line.startswith("@"):
            key, _, value = line[1:].partition(" ")
            found.setdefault(key, []).append(value)
    return found
