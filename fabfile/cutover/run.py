"""`inv db.cutover`: move the running app from its SQLite file to PostgreSQL.

Show the plan, confirm, take the host's deploy lock, rehearse (a snapshot of the live file
through the migration's preflight and target checks, with the site up: bad rows, a target
that holds the tables or cannot be reached stop the run before any downtime; the COPY text
its preflight renders is kept, and the window's migration checks again only the tables whose
pages changed since: `fabfile.migrate.engine.Reuse`), then:

1. maintenance on: start the page, wait until it is healthy and the proxy routes to it;
2. drain the web containers (their routers leave; all traffic gets the page, 503);
3. final snapshot of the SQLite file (nothing writes to it any more), downloaded here;
4. migrate it into `database.url` with the migration engine, verification on;
5. switch: the deploy of the release rendered with `database.backend: postgres` (under the
   same lock: `execute.deploy`, its rolling update and smoke test) starts beside the
   migration and holds its new containers, ready, at a gate (`gated`); once the data is in,
   `{app_dir}/database-backend` = postgres is written and the gate opens: the new containers
   are verified and released, the drained ones retired;
6. maintenance off: the page goes at once, without a drain, once the proxy routes to the
   new containers (`rollout.settle` after they turned healthy): their routers outrank the
   page's, so it gets no request any more; then a final smoke test.

Any failure up to and including the switch's deploy puts things back: the marker is removed,
the web containers still on SQLite are undrained (they turn healthy and take traffic
again), the page is removed, the lock released, and the run exits non-zero saying why. The
SQLite file is only ever read; it stays the live database. Nothing reached the app while
the page was up, so no write is lost. (A deploy that fails after its new containers served
traffic rolls itself back to the SQLite release; writes made to PostgreSQL in that window
stay only there.)
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fabfile import ui
from fabfile.config import Config
from fabfile.deploy import execute, facts, release, rollout, smoke
from fabfile.deploy.execute import DeployOptions, HostRun, finish, shielded, sigterm_as_interrupt
from fabfile.deploy.lock import Holder, held_error, keep_alive, new_holder
from fabfile.errors import UserError
from fabfile.migrate.engine import MigrateOptions, MigrationFailed, Reuse
from fabfile.migrate.engine import migrate as run_migration
from fabfile.migrate.report import RunUI, redact_url
from fabfile.migrate.spill import Spill
from fabfile.remote import Step, Transport, connect

from . import snapshot, steps
from .gated import GatedDeploy
from .site import run_site_step


@dataclass(frozen=True)
class CutoverOptions:
    yes: bool = False
    jobs: int = 2
    lock_wait: float = 0.0
    drop_existing: bool = False
    schema: Literal["infer", "existing"] = "infer"
    """`existing`: the app's own migrations (`app.migrate_command`, run against the target
    in a one-off container of the current release) make the schema; the data is copied into
    it by column name."""
    report: Path | None = None
    """Where to write the window's phases as JSON (the benchmark reads it)."""


@dataclass
class Window:
    """The maintenance window, phase by phase: what users waited through."""

    phases: dict[str, float] = field(default_factory=dict)
    migration: dict[str, float] = field(default_factory=dict)
    """The migration engine's own phases (preflight, create schema, load + verify, finish)."""
    rows: int = 0

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = round(time.monotonic() - started, 3)

    @property
    def seconds(self) -> float:
        return round(sum(self.phases.values()), 3)

    def as_data(self) -> dict[str, object]:
        return {"window": self.seconds, "phases": self.phases, "migration": self.migration,
                "rows": self.rows}


def postgres_config(cfg: Config) -> Config:
    """The environment as it is after the cutover: `database.backend: postgres`."""
    return dataclasses.replace(cfg, database=dataclasses.replace(cfg.database,
                                                                 backend="postgres"))


def check_config(cfg: Config) -> str:
    """The target URL; or the error for a config that cannot be cut over."""
    snapshot.require_sqlite(cfg)
    if cfg.database.backend != "sqlite":
        raise UserError(f"database.backend of {cfg.env!r} is already {cfg.database.backend}: "
                        "nothing to cut over (set database.backend: sqlite while the app "
                        "runs on its SQLite file)")
    if cfg.database.url is None:
        raise UserError("db.cutover moves the app to the managed PostgreSQL at database.url, "
                        f"which environments/{cfg.env}.yaml does not set")
    return cfg.database.url.reveal()


def plan_lines(cfg: Config, target: str, schema: str = "infer") -> list[str]:
    """What the cutover will do, one line a step (secrets redacted)."""
    host = cfg.hosts[0].label
    domains = ", ".join(cfg.domains) or "(no domains)"
    return [
        f"take the deploy lock on {host}",
        f"rehearse with the site up: snapshot {cfg.database.sqlite_path}, preflight every row "
        f"and check {redact_url(target)}; any problem stops here, before the downtime",
        f"maintenance on: {cfg.maintenance.image} as {steps.maintenance_name(cfg)} answers 503 "
        f"for {domains}; then drain the {cfg.app.name} containers",
        f"final snapshot of {cfg.database.sqlite_path} (online backup), downloaded here",
        f"migrate it into {redact_url(target)} (verify: checksums)"
        + (", into the schema the app's own migrations made there "
           f"(`{' '.join(cfg.app.migrate_command)}`, run before the rehearsal)"
           if schema == "existing" else ""),
        f"meanwhile, on Compose, start the {cfg.app.name} containers with database.backend: "
        "postgres held out of the pool (the running version); once the data is in: write "
        f"{steps.marker_path(cfg)} = postgres, verify and release them, retire the SQLite ones",
        "maintenance off, smoke test",
        "on failure before the switch completes: undrain the SQLite containers, remove the "
        "page, release the lock",
    ]


@dataclass
class _State:
    transport: Transport
    holder: Holder
    page: bool = False
    drained: bool = False
    marker: bool = False
    deployed: bool = False


def _run(state: _State, step: Step) -> str:
    return run_site_step(state.transport, step)


def _lock(cfg: Config, state: _State, lock_wait: float) -> facts.Facts:
    """Take (or re-take) the lock with this run's token and read the host's facts."""
    t, holder = state.transport, state.holder
    result = t.probe(facts.gather_step(cfg, take_lock=True, lock_wait=lock_wait,
                                       holder_json=holder.to_json(), token=holder.token))
    found = facts.parse(result.stdout)
    if found.lock == "held":
        raise held_error(t.host.label, cfg.env, found.holder, lock_wait, found.liveness,
                         cfg.deploy.lock_stale_after)
    if found.lock == "taken":
        keep_alive(t, rollout.lock_dir(cfg), holder, cfg.deploy.heartbeat)
    return found


def _preflight(cfg: Config, found: facts.Facts, host: str, user: str) -> None:
    if found.database_backend == "postgres":
        raise UserError(f"{host} was already cut over ({steps.marker_path(cfg)} says postgres):"
                        f" set database.backend: postgres in environments/{cfg.env}.yaml")
    facts.require_ready(found, cfg, host, user)
    web = found.service(cfg.app.name)
    if not any(c.serving for c in web):
        raise UserError(f"no healthy {cfg.app.name} container runs on {host}: deploy the app "
                        f"on SQLite first (`inv deploy --env={cfg.env}`), then cut over")


class _RehearsalUI(RunUI):
    """The dry run's output without the schema it would create (the real run prints it)."""

    def statements(self, statements: list[str]) -> None:
        self.step(f"the schema to create: {len(statements)} statements")


def _rehearse(cfg: Config, transport: Transport, target: str, opts: CutoverOptions,
              reuse: Reuse | None) -> None:
    """Snapshot the live file and dry-run the migration, with the site still up; its
    preflight is kept in REUSE for the tables the final snapshot finds unchanged."""
    ui.step("rehearsal: snapshot and preflight with the site up")
    with tempfile.TemporaryDirectory(prefix="shipyard-rehearsal-") as tmp:
        snap = snapshot.take(cfg, transport, Path(tmp))
        try:
            run_migration(snap.path, target,
                          MigrateOptions(jobs=opts.jobs, dry_run=True, schema=opts.schema,
                                         drop_existing=opts.drop_existing), _RehearsalUI(),
                          reuse=reuse)
        except UserError as exc:
            raise UserError(f"the rehearsal found a problem, so the site was not taken down: "
                            f"{exc.message}") from None
    ui.ok("rehearsal passed: every row can move, the target is ready")


def _reuse() -> Reuse | None:
    """Where the rehearsal renders the COPY text the final run reuses for the tables that did
    not change in between (`Reuse`); None without a spill directory (each run reads the
    snapshot itself then)."""
    try:
        return Reuse(Spill())
    except OSError:
        return None


def _put_back(cfg: Config, state: _State) -> list[str]:
    """Undo what this run changed on the host; returns what could not be undone."""
    problems: list[str] = []
    undo: list[tuple[bool, Step]] = [
        (state.marker, steps.remove_marker(cfg)),
        (state.drained or state.deployed, steps.undrain_web(cfg)),
        (state.page, steps.maintenance_off(cfg)),
    ]
    for needed, step in undo:
        if not needed:
            continue
        try:
            _run(state, step)
        except UserError as exc:
            problems.append(exc.message)
    return problems


def serving_config(cfg: Config, found: facts.Facts) -> Config:
    """The environment after the cutover (`postgres_config`) at the version the host serves
    now: the cutover changes the database, never the app's version (the YAML's `app.tag` may
    be a default such as `latest` while CI deploys commit tags with `--version`)."""
    prefix = f"{cfg.app.image}:"
    tags = {c.image.removeprefix(prefix) for c in found.service(cfg.app.name)
            if c.release == found.current and c.image.startswith(prefix)}
    tag = tags.pop() if len(tags) == 1 else (
        release.version_of(found.current) if found.current else cfg.app.tag)
    return dataclasses.replace(postgres_config(cfg), app=dataclasses.replace(cfg.app, tag=tag))


def _schema_made_by(cfg: Config, found: facts.Facts, schema: str) -> bool:
    """Whether the image the deploy brings up is the one whose migrations just made the
    target schema (`--schema=existing` from the current release running it): its migrate
    step would find nothing to do, so the window skips it."""
    return schema == "existing" and any(
        c.image == cfg.image_ref for c in found.service(cfg.app.name)
        if c.release == found.current and c.state == "running")


def cutover(cfg: Config, opts: CutoverOptions) -> None:
    """Run the cutover (see the module docstring); raise UserError saying why it failed."""
    target = check_config(cfg)
    if opts.schema == "existing" and not cfg.app.migrate_command:
        raise UserError("--schema=existing copies into the schema the app's own migrations "
                        "make, and app.migrate_command is empty: set it, or use "
                        "--schema=infer")
    host_cfg = cfg.hosts[0]
    for line in plan_lines(cfg, target, opts.schema):
        ui.step(line)
    if not opts.yes:
        if not sys.stdin.isatty():
            raise UserError("db.cutover takes the site down for a while and needs confirmation;"
                            " there is no terminal to ask on: pass --yes", code=2)
        if not ui.confirm(f"cut {cfg.env} over to PostgreSQL as planned above?",
                          assume_yes=False):
            raise UserError("cancelled: nothing was changed")
    state = _State(connect(host_cfg), new_holder("cutover", cfg.app.tag))
    window = Window()
    host = state.transport.host.label
    user = host_cfg.user if host_cfg.transport == "ssh" else "this user"
    started = time.monotonic()
    run = HostRun(state.transport)
    reuse = _reuse()
    try:
        with sigterm_as_interrupt():
            with ui.console.status(f"{host}: take the lock and gather facts"):
                found = _lock(cfg, state, opts.lock_wait)
            run.locked = found.lock == "taken"
            _preflight(cfg, found, host, user)
            ui.ok(f"{host}: lock taken")
            if opts.schema == "existing":
                _run(state, steps.target_schema(cfg, target))
            _rehearse(cfg, state.transport, target, opts, reuse)
            state.page = True
            _run(state, steps.maintenance_on(cfg))
            state.drained = True
            with window.phase("drain the web containers"):
                _run(state, steps.drain_web(cfg))
            serving = serving_config(cfg, found)
            state.deployed = True
            healthy_at = _migrate_and_switch(cfg, state, opts, window, target, reuse, serving,
                                             _schema_made_by(serving, found, opts.schema))
    except (UserError, KeyboardInterrupt) as exc:
        why = exc.message if isinstance(exc, UserError) else "interrupted"
        if reuse is not None:
            reuse.spill.close()
        with shielded():
            if state.page or state.drained or state.marker:
                ui.warn(f"cutover failed ({why.splitlines()[0]}); putting SQLite back")
                if state.deployed:
                    _relock(cfg, state, run)
                problems = _put_back(cfg, state)
            else:
                problems = []
            run.result, run.message = "failed", why
            if run.locked:
                finish(cfg, run, state.holder, action="cutover", switch=None, prune=(),
                       started=started)
            state.transport.close()
        where = ("nothing was changed" if not state.page else
                 "the app is back on SQLite, which stays the live database (it was only read)")
        if problems:
            raise UserError(f"cutover failed: {why}\nPutting things back did not fully work: "
                            + "; ".join(problems) + f"\nCheck with `inv status --env={cfg.env}`"
                            ) from None
        raise UserError(f"cutover failed: {why}\n{where}",
                        code=exc.code if isinstance(exc, UserError) else 130) from None
    try:
        with window.phase("page removal"):
            _relock(cfg, state, run)
            _until_routed(cfg, healthy_at)
            out = _run(state, steps.remove_outranked_page(cfg))
        state.page = False
        if "@kept-manual" in out:
            ui.warn("an operator's maintenance page is up (`inv maintenance.on`) and stays: "
                    f"`inv maintenance.off --env={cfg.env}` takes it down")
        _show_window(window, opts.report)
        with ui.console.status(f"{host}: smoke test"):
            check = smoke.run(postgres_config(cfg), transport=state.transport)
        if not check.ok and not check.skipped:
            raise UserError(f"the smoke test after the cutover failed: {check.failures[-1]}: "
                            "the app runs on PostgreSQL; check it with "
                            f"`inv status --env={cfg.env}` and `inv logs --env={cfg.env}`")
        run.result, run.message = "success", "on PostgreSQL"
    except UserError as exc:
        run.result, run.message = "failed", exc.message
        raise
    finally:
        with shielded():
            finish(cfg, run, state.holder, action="cutover", switch=None, prune=(),
                   started=started)
            state.transport.close()
    ui.ok(f"cutover of {cfg.env} done in {time.monotonic() - started:.0f}s: the app runs on "
          f"PostgreSQL. Now set database.backend: postgres in environments/{cfg.env}.yaml "
          "(deploys refuse the sqlite backend from now on)")


def _until_routed(cfg: Config, healthy_at: float | None) -> None:
    """Sleep until the proxy routes to the new web containers (`rollout.settle` after they
    turned healthy): the page goes without a drain only once their routers outrank it."""
    waited = time.monotonic() - healthy_at if healthy_at is not None else 0.0
    time.sleep(max(0.0, rollout.settle(cfg) - waited))


def _start_deploy(serving: Config, state: _State, skip: bool) -> GatedDeploy | None:
    """The deploy on PostgreSQL, started now beside the migration (`gated`): Compose only
    (its roll can hold new containers until the gate opens)."""
    if serving.deploy.engine != "compose":
        return None
    deploy = GatedDeploy(lambda gate: execute.deploy(serving, DeployOptions(
        yes=True, holder=state.holder, during_maintenance=True, skip_migrations=skip,
        gate=gate)))
    deploy.start()
    return deploy


class _MigrationUI(RunUI):
    """The window's migration without progress bars: the deploy started beside it prints
    its own steps meanwhile."""

    @contextmanager
    def bars(self, tables: list[tuple[str, int]]) -> Iterator[Any]:
        yield lambda *_args: None


def _migrate_and_switch(cfg: Config, state: _State, opts: CutoverOptions, window: Window,
                        target: str, reuse: Reuse | None, serving: Config,
                        skip: bool) -> float | None:
    """The final snapshot; the migration, with the deploy on PostgreSQL started beside it
    (`gated`: after the snapshot, so the host's own work for the two never competes); the
    marker; the deploy's release. Returns when its new web containers turned healthy."""
    with tempfile.TemporaryDirectory(prefix="shipyard-cutover-") as tmp:
        with window.phase("snapshot"):
            snap = snapshot.take(cfg, state.transport, Path(tmp))
        deploy = _start_deploy(serving, state, skip)
        try:
            return _switch(cfg, state, opts, window, target, reuse, serving, skip, snap.path,
                           deploy)
        except (UserError, KeyboardInterrupt) as exc:
            if deploy is not None:
                with shielded():
                    deploy.settle(exc.message if isinstance(exc, UserError) else "interrupted")
            raise


def _switch(cfg: Config, state: _State, opts: CutoverOptions, window: Window, target: str,
            reuse: Reuse | None, serving: Config, skip: bool, snap: Path,
            deploy: GatedDeploy | None) -> float | None:
    host = state.transport.host.label
    try:
        with window.phase("migrate + verify"):
            report = run_migration(
                snap, target,
                MigrateOptions(jobs=opts.jobs, verify="checksums", schema=opts.schema,
                               drop_existing=opts.drop_existing),
                _MigrationUI() if deploy is not None else None, reuse=reuse)
        window.migration = dict(report.phases)
        window.rows = sum(t.rows for t in report.tables)
    except MigrationFailed as exc:
        raise UserError(f"the migration failed: {exc.message}") from None
    finally:
        if reuse is not None:
            reuse.spill.close()
    with window.phase("deploy on PostgreSQL"):
        if deploy is not None and deploy.failed:
            deploy.join()
        state.transport.put(b"postgres\n", steps.marker_path(cfg), 0o644,
                            name="switch: write the database-backend marker")
        state.marker = True
        ui.ok(f"{host}: {steps.marker_path(cfg)} = postgres")
        if deploy is None:
            done = execute.deploy(serving, DeployOptions(
                yes=True, holder=state.holder, during_maintenance=True, skip_migrations=skip))
        else:
            deploy.open()
            done = deploy.join()
        state.drained = state.marker = False
        state.deployed = False
    return max((r.healthy_at for r in done.runs if r.healthy_at is not None), default=None)


def _show_window(window: Window, report: Path | None) -> None:
    """The window's phases as a table (and as JSON in `report`)."""
    rows = [[name, f"{seconds:.1f}s"] for name, seconds in window.phases.items()]
    rows += [[f"  (migration: {name})", f"{seconds:.1f}s"]
             for name, seconds in window.migration.items()]
    ui.console.print(ui.table(f"maintenance window: {window.seconds:.1f}s "
                              f"({window.rows:,} rows)", ["phase", "time"], rows))
    if report is not None:
        report.write_text(json.dumps(window.as_data(), indent=2) + "\n")


def _relock(cfg: Config, state: _State, run: HostRun) -> None:
    """The deploy released the lock at its end: take it back for what follows."""
    try:
        found = _lock(cfg, state, 30.0)
        run.locked = found.lock == "taken"
    except UserError as exc:
        ui.warn(f"could not take the deploy lock again ({exc.message}); going on without it")
        run.locked = False
