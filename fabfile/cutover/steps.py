"""The host-side steps of a snapshot and a cutover, as pure builders of `Step`s.

Each is one round trip running a constant script (the deploy's `lib.sh` rollout functions
prepended where it drains) with its values as positional arguments. Scripts print
`@key value` markers that `fabfile.deploy.rollout.markers` reads.

The maintenance page is a plain `docker run` container (not part of the Compose project's
services, so no deploy ever touches it) named `<project>-maintenance` on the edge network.
It carries the Compose project label (so a proxy constrained to the project, and `inv
status`, see it) and one Traefik router per domain with the web routers' Host rules at
priority 1, the lowest: while a web container is healthy its routers win; once every web
container is drained, Traefik drops their routers and the maintenance routers take all
traffic. Its healthcheck fails while `MAINTENANCE_DRAIN` exists, so it leaves the proxy the
same way web containers do before it is removed.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fabfile.config import Config
from fabfile.deploy import rollout
from fabfile.remote import Step, script
from fabfile.render import render

MAINTENANCE_DRAIN = "/tmp/maintenance-drain"  # noqa: S108 - inside the container
MARKER = "database-backend"

SNAPSHOT_SCRIPT = r"""# Usage: SRC WORK_PARENT
# A consistent copy of the live SQLite file SRC with SQLite's online backup API, opened
# read-only, into a fresh directory under WORK_PARENT. Prints "@snapshot PATH BYTES SHA256 TOOL".
set -u
src=$1 parent=$2
[ -f "$src" ] || { echo "@error missing"; exit 3; }
[ -r "$src" ] || { echo "@error unreadable"; exit 3; }
if command -v python3 >/dev/null 2>&1 && python3 -c 'import sqlite3' >/dev/null 2>&1; then
  tool=python3
elif command -v sqlite3 >/dev/null 2>&1; then
  tool=sqlite3
else
  echo "@error no-tool"
  exit 4
fi
mkdir -p "$parent" && dir=$(mktemp -d "$parent/.sqlite-snapshot.XXXXXX") || {
  echo "@error workdir"; exit 5; }
dst="$dir/snapshot.db"
if [ "$tool" = python3 ]; then
  python3 - "$src" "$dst" 2>"$dir/err" <<'PY'
import sqlite3, sys, urllib.parse
src = sqlite3.connect("file:" + urllib.parse.quote(sys.argv[1]) + "?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.execute("PRAGMA journal_mode=DELETE")
dst.close()
src.close()
PY
else
  sqlite3 -readonly "$src" ".backup $dst" 2>"$dir/err" &&
    sqlite3 "$dst" "PRAGMA journal_mode=DELETE;" >/dev/null 2>>"$dir/err"
fi
code=$?
if [ "$code" -ne 0 ]; then
  echo "@error backup $(tail -n 3 "$dir/err" | tr '\n' ' ')"
  rm -rf "$dir"
  exit 6
fi
echo "@snapshot $dst $(wc -c < "$dst" | tr -d ' ') $(sha256sum < "$dst" | cut -d' ' -f1) $tool"
"""

FETCH_SCRIPT = """cat -- "$1"
code=$?
rm -rf -- "$(dirname "$1")"
exit "$code"
"""

CUTOVER_SCRIPT = r"""
# Usage: ACTION ARG...
#   maint-up NAME TIMEOUT SETTLE DOCKER_RUN_ARG...   start the page, wait healthy + SETTLE
#   drain-web PROJECT SERVICE FILE SETTLE TIMEOUT    drain running web containers, wait
#                                                    unhealthy + SETTLE
#   undrain-web PROJECT SERVICE FILE SETTLE TIMEOUT  undo it: wait healthy + SETTLE
#   maint-down NAME SETTLE TIMEOUT                   drain the page, wait SETTLE, remove it
set -u
action=$1
shift
case $action in
  maint-up)
    name=$1 limit=$2 settle=$3
    shift 3
    docker rm -f "$name" >/dev/null 2>&1
    if ! out=$("$@" 2>&1); then
      printf '%s\n' "$out" | tail -n 5
      echo "@error maint-start"
      exit 1
    fi
    id=$(docker inspect -f '{{.Id}}' "$name")
    if ! wait_until in "$limit" "$id"; then
      docker logs --tail 10 "$id" 2>&1 | sed 's/^/@log /'
      echo "@error maint-unhealthy $(states "$id" | cut -d' ' -f2-)"
      docker rm -f "$id" >/dev/null 2>&1
      exit 1
    fi
    sleep "$settle"
    echo "@maintenance $id" ;;
  drain-web|undrain-web)
    project=$1 service=$2 file=$3 settle=$4 limit=$5
    ids=$(running $(service_ids "$project" "$service"))
    if [ "$action" = drain-web ]; then
      [ -n "$ids" ] || { echo "@error no-web"; exit 1; }
      if ! drain "$file" $ids || ! wait_until out "$limit" $ids; then
        undrain "$file" $ids
        echo "@error still-healthy"
        exit 1
      fi
      sleep "$settle"
      echo "@drained" $ids
    else
      [ -n "$ids" ] || { echo "@undrained"; exit 0; }
      undrain "$file" $ids
      if ! wait_until in "$limit" $ids; then
        echo "@error not-healthy $(states $ids | tr '\n' ' ')"
        exit 1
      fi
      sleep "$settle"
      echo "@undrained" $ids
    fi ;;
  maint-down)
    name=$1 settle=$2 limit=$3
    ids=$(docker ps -aq --no-trunc --filter "name=^$name\$")
    [ -n "$ids" ] || { echo "@removed"; exit 0; }
    retire /tmp/maintenance-drain "$settle" 10 "$limit" $ids ;;
  *)
    echo "@error unknown-action $action"
    exit 2 ;;
esac
"""


@cache
def _cutover_body() -> str:
    lib = resources.files("fabfile.deploy").joinpath("scripts", "lib.sh").read_text("utf-8")
    return lib + "\n" + CUTOVER_SCRIPT


def _cutover(title: str, *args: str, timeout: float | None = None) -> Step:
    return script(title, _cutover_body(), *args, timeout=timeout)


def snapshot_step(cfg: Config) -> Step:
    assert cfg.database.sqlite_path is not None
    return script(f"snapshot {cfg.database.sqlite_path} (SQLite online backup)",
                  SNAPSHOT_SCRIPT, cfg.database.sqlite_path, cfg.deploy.app_dir, timeout=3600)


def fetch_step(remote_path: str) -> Step:
    """Streams the snapshot back and removes its directory on the host."""
    return script(f"download {remote_path}", FETCH_SCRIPT, remote_path, timeout=3600)


def maintenance_name(cfg: Config) -> str:
    return f"{cfg.project}-maintenance"


def maintenance_page(cfg: Config) -> str:
    return render("maintenance.html.j2", {"maintenance": cfg.maintenance})


def maintenance_labels(cfg: Config) -> dict[str, str]:
    """Traefik labels of the page: a router per domain, the web routers' rules, priority 1."""
    m = cfg.maintenance
    labels = {
        "com.docker.compose.project": cfg.project,
        "shipyard.role": "maintenance",
        "traefik.enable": "true",
        "traefik.docker.network": cfg.deploy.network,
        "traefik.http.services.maintenance.loadbalancer.server.port": str(m.port),
    }
    for i, domain in enumerate(cfg.domains, start=1):
        router = f"traefik.http.routers.maintenance-{i}"
        labels |= {
            f"{router}.rule": f"Host(`{domain}`)",
            f"{router}.priority": "1",
            f"{router}.entrypoints": "websecure",
            f"{router}.tls": "true",
            f"{router}.tls.certresolver": "letsencrypt",
            f"{router}.service": "maintenance",
        }
    return labels


def maintenance_run_argv(cfg: Config) -> tuple[str, ...]:
    m, hc = cfg.maintenance, cfg.app.healthcheck
    probe = (f"test ! -e {MAINTENANCE_DRAIN} && "
             f"wget -q -O /dev/null http://127.0.0.1:{m.port}{m.health_path} || exit 1")
    argv = ["docker", "run", "-d", "--name", maintenance_name(cfg), "--network",
            cfg.deploy.network, "--restart", "unless-stopped",
            "--health-cmd", probe, "--health-interval", f"{hc.interval}s",
            "--health-timeout", f"{hc.timeout}s", "--health-retries", str(hc.retries),
            "--health-start-period", f"{hc.start_period}s",
            "--log-opt", "max-size=10m", "--log-opt", "max-file=2"]
    for key, value in sorted(maintenance_labels(cfg).items()):
        argv += ["--label", f"{key}={value}"]
    for key, value in sorted({**cfg.maintenance.env,
                              "MAINTENANCE_PAGE": maintenance_page(cfg)}.items()):
        argv += ["-e", f"{key}={value}"]
    return (*argv, m.image, *m.command)


def maintenance_on(cfg: Config) -> Step:
    limit = cfg.maintenance.ready_timeout + cfg.app.healthcheck.start_period
    return _cutover("maintenance on: start the page, wait until the proxy routes to it",
                    "maint-up", maintenance_name(cfg), str(limit), f"{rollout.settle(cfg):g}",
                    *maintenance_run_argv(cfg), timeout=limit + rollout.settle(cfg) + 120)


def drain_web(cfg: Config) -> Step:
    return _cutover("drain the web containers: all traffic to the maintenance page",
                    "drain-web", cfg.project, cfg.app.name, cfg.app.drain_file,
                    f"{rollout.settle(cfg):g}", str(rollout.unhealthy_timeout(cfg)),
                    timeout=rollout.drain_bound(cfg) + 60)


def undrain_web(cfg: Config) -> Step:
    limit = rollout.unhealthy_timeout(cfg) + cfg.app.healthcheck.start_period
    return _cutover("undrain the web containers (back on SQLite)", "undrain-web", cfg.project,
                    cfg.app.name, cfg.app.drain_file, f"{rollout.settle(cfg):g}", str(limit),
                    timeout=limit + rollout.settle(cfg) + 60)


def maintenance_off(cfg: Config) -> Step:
    return _cutover("maintenance off: drain and remove the page", "maint-down",
                    maintenance_name(cfg), f"{rollout.settle(cfg):g}",
                    str(rollout.unhealthy_timeout(cfg)), timeout=rollout.drain_bound(cfg) + 60)


def marker_path(cfg: Config) -> str:
    return f"{cfg.deploy.app_dir}/{MARKER}"


def remove_marker(cfg: Config) -> Step:
    return Step("remove the database-backend marker", ("rm", "-f", marker_path(cfg)))
