# The doctor's one command per host: Docker and Compose versions, free disk, listeners,
# published container ports, the host's addresses, its part in a swarm (state, manager or not,
# cluster, advertised address, the managers it knows), whether the web healthcheck can run in
# the image the host runs, and a `psql` probe of the database from the host. Each probe's output
# goes between `@@begin NAME` and `@@end NAME RC` lines (`doctor.parse_probes`). Stdin feeds
# only the database probe (a libpq service file); every other command reads /dev/null.
# Usage: facts.sh APP_DIR CACHE_DIR PG_IMAGE PG_PROBE PROJECT SERVICE IMAGE PROBE_CACHE
#                 PROBE_SPEC
#   CACHE_DIR "": no backup cache; PG_IMAGE "": no database probe; PROBE_SPEC "": no
#   healthcheck probe (IMAGE is tried when no SERVICE container runs).
# shellcheck disable=SC2317  # the functions below run through probe's "$@", indirectly
set -u
app_dir=$1 cache_dir=$2 pg_image=$3 pg_probe=$4 project=$5 service=$6 image=$7 probe_cache=$8
probe_spec=$9
probe() {
  name=$1; shift
  printf '\n@@begin %s\n' "$name"
  "$@" </dev/null 2>&1
  printf '\n@@end %s %s\n' "$name" "$?"
}
existing() {
  p=$1
  while [ ! -e "$p" ]; do p=$(dirname "$p"); done
  printf '%s' "$p"
}
disk() {
  printf '%s\t%s\t' "$1" "$2"
  df -Pk -- "$(existing "$2")" | tail -n 1
}
disks() {
  disk app_dir "$app_dir" || return
  if [ -n "$cache_dir" ]; then disk backup_cache "$cache_dir" || return; fi
  root=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null </dev/null) || root=
  if [ -n "$root" ]; then disk docker_root "$root"; fi
}
addresses() {
  hostname -I 2>/dev/null || ip -o addr show | awk '{ sub("/.*", "", $4); print $4 }'
}
probe docker docker version --format '{{.Server.Version}}'
probe compose docker compose version --short
probe disk disks
probe listeners ss -Hltnp
probe containers docker ps --format \
  '{"Names":{{json .Names}},"Image":{{json .Image}},"Ports":{{json .Ports}}}'
probe addresses addresses
cluster='{{if .Swarm.Cluster}}{{.Swarm.Cluster.ID}}{{else}}-{{end}}'
node_addr='{{if .Swarm.NodeAddr}}{{.Swarm.NodeAddr}}{{else}}-{{end}}'
managers='{{range .Swarm.RemoteManagers}}{{.Addr}},{{end}}-'
probe swarm docker info --format \
  "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} $cluster $node_addr $managers"
# health: the web healthcheck against the image the web containers run (else IMAGE).
health() {
  running=$(docker ps --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$service" --format '{{.Image}}' | head -n 1)
  echo "image ${running:-$image}"
  (health_probe "$probe_cache" "${running:-$image}" "$probe_spec")
}
if [ -n "$probe_spec" ]; then probe healthcheck health; fi
if [ -n "$pg_image" ]; then
  printf '\n@@begin database\n'
  docker run --rm -i --network host --pull missing --entrypoint sh "$pg_image" \
    -c "$pg_probe" 2>&1
  printf '\n@@end database %s\n' "$?"
fi
exit 0
