# Functions shared by the rollout phases (prepended to roll_up.sh and roll_drain.sh).
# shellcheck shell=sh
# shellcheck disable=SC2086,SC2046  # lists of container ids split on purpose

now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.2f", $1 - $2}'; }

# service_ids PROJECT SERVICE: the service's long-running containers (full ids).
service_ids() {
  docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$1" \
    --filter "label=com.docker.compose.service=$2" --filter "label=com.docker.compose.oneoff=False"
}

# states ID...: one "ID STATUS HEALTH" line per container (HEALTH is none without a check).
states() {
  [ $# -gt 0 ] || return 0
  docker inspect --format '{{.Id}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$@" 2>/dev/null
}

# running ID...: those of the containers that are running.
running() { states "$@" | awk '$2 == "running" {print $1}'; }

# drain FILE ID...: create FILE in each container (in parallel), so its healthcheck fails.
drain() {
  file=$1
  shift
  pids=
  for id in "$@"; do
    docker exec "$id" sh -c ': > "$1"' sh "$file" &
    pids="$pids $!"
  done
  failed=0
  for pid in $pids; do
    wait "$pid" || failed=1
  done
  return "$failed"
}

# undrain FILE ID...: remove FILE again (best effort).
undrain() {
  file=$1
  shift
  for id in "$@"; do
    docker exec "$id" sh -c 'rm -f "$1"' sh "$file" >/dev/null 2>&1
  done
}

# wait_until WANT TIMEOUT ID...: until no running one is healthy (WANT=out) or every one is
# running and healthy (WANT=in); returns 1 after TIMEOUT seconds.
wait_until() {
  want=$1 limit=$(($(date +%s) + $2))
  shift 2
  while :; do
    if [ "$want" = out ]; then
      states "$@" | grep -q ' running healthy$' || return 0
    elif ! states "$@" | grep -qv ' running \(healthy\|none\)$'; then
      return 0
    fi
    [ "$(date +%s)" -ge "$limit" ] && return 1
    sleep 0.2
  done
}

# retire FILE SETTLE GRACE TIMEOUT ID...: remove containers that a proxy may route to without
# failing a request: drain the running ones, wait until none is healthy, wait SETTLE seconds
# (the proxy's throttle plus a margin), stop them with GRACE seconds, then remove them all.
retire() {
  file=$1 settle=$2 grace=$3 limit=$4
  shift 4
  [ $# -gt 0 ] || return 0
  live=$(running "$@")
  if [ -n "$live" ]; then
    drain "$file" $live >/dev/null 2>&1
    wait_until out "$limit" $live
    sleep "$settle"
    docker stop -t "$grace" $live >/dev/null 2>&1
  fi
  docker rm -f "$@" >/dev/null 2>&1
  echo "@removed $*"
}
