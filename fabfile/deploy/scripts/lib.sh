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
# An image without a shell (distroless, exec-form check) gets it through `docker cp`.
drain() {
  file=$1
  shift
  pids=
  for id in "$@"; do
    { docker exec "$id" sh -c ': > "$1"' sh "$file" 2>/dev/null ||
        drain_copy "$id" "$file"; } &
    pids="$pids $!"
  done
  failed=0
  for pid in $pids; do
    wait "$pid" || failed=1
  done
  return "$failed"
}

# drain_copy ID FILE: put an empty FILE into the container without running anything in it.
drain_copy() {
  dir=$(mktemp -d) || return 1
  : > "$dir/${2##*/}"
  docker cp "$dir/${2##*/}" "$1:$2"
  code=$?
  rm -rf "$dir"
  return "$code"
}

# hold FILE ID...: create the hold FILE in each container (in parallel): its healthcheck
# fails while it exists, so the proxy does not route to it yet.
hold() {
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

# unhold FILE ID...: lift the hold; the next probe of the healthcheck admits the container.
unhold() {
  file=$1
  shift
  for id in "$@"; do
    docker exec "$id" sh -c 'rm -f "$1"' sh "$file"
  done
}

# wait_ready LIMIT GRACE COMMAND ID...: until COMMAND (the healthcheck's probe, without its
# file tests) passes in every container, run with `docker exec`. Prints "ID STATUS" of a
# container that stopped running, "ID running unhealthy" when one has not passed after GRACE
# seconds (when Docker would have called it unhealthy), or "timeout LIMIT", and fails.
wait_ready() {
  seconds=$1 grace=$(($(date +%s) + $2)) probe=$3
  limit=$(($(date +%s) + seconds))
  shift 3
  pending="$*"
  while [ -n "$pending" ]; do
    left=
    for id in $pending; do
      status=$(docker inspect --format '{{.State.Status}}' "$id" 2>/dev/null)
      if [ "$status" != running ]; then
        echo "$id ${status:-gone}"
        return 1
      fi
      timeout 20 docker exec "$id" sh -c "$probe" >/dev/null 2>&1 || left="$left $id"
    done
    pending=$left
    [ -z "$pending" ] && return 0
    if [ "$(date +%s)" -ge "$grace" ]; then
      set -- $pending
      echo "$1 running unhealthy"
      return 1
    fi
    if [ "$(date +%s)" -ge "$limit" ]; then
      echo "timeout $seconds"
      return 1
    fi
    sleep 0.3
  done
}

# undrain FILE ID...: remove FILE again (best effort).
undrain() {
  file=$1
  shift
  for id in "$@"; do
    docker exec "$id" sh -c 'rm -f "$1"' sh "$file" >/dev/null 2>&1
  done
}

# out_for SECONDS ID...: whether every one has been unhealthy for SECONDS at least: its
# failing streak beyond the `retries` that made it unhealthy (when the proxy dropped it),
# times its probe interval (Docker's 30 s and 3 when unset). Anything unreadable: no.
out_for() {
  _for=$1
  shift
  [ $# -gt 0 ] || return 1
  docker inspect --format \
    '{{.State.Health.Status}} {{.State.Health.FailingStreak}} {{printf "%d" .Config.Healthcheck.Interval}} {{.Config.Healthcheck.Retries}}' \
    "$@" 2>/dev/null | awk -v need="$_for" -v n=$# '
      $1 == "unhealthy" && NF == 4 {
        interval = ($3 > 0 ? $3 : 30e9) / 1e9
        if (($2 - ($4 > 0 ? $4 : 3)) * interval >= need) ok++
      }
      END { exit !(ok == n) }'
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

# health_probe CACHE_DIR IMAGE SPEC: run the web healthcheck's program once in a throwaway
# container of IMAGE (no network, so the check itself fails at once) and fail when the
# program is missing from the image (exit 127) or cannot run (126): no container would ever
# turn healthy. SPEC is FORM on its first line (shell: the rest is the command for /bin/sh;
# exec: one word a line). A check that ran is remembered per image id in CACHE_DIR.
health_probe() {
  cache=$1 image=$2 spec=$3
  nl='
'
  form=${spec%%"$nl"*} words=${spec#*"$nl"}
  if ! id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null); then
    echo "@probe no-image"
    return 0
  fi
  key=$(printf '%s\n%s' "$id" "$spec" | sha256sum | cut -c1-32)
  if [ -e "$cache/$key" ]; then
    echo "@probe passed-before"
    return 0
  fi
  name="shipyard-healthprobe-$$"
  if [ "$form" = shell ]; then
    out=$(timeout 60 docker run --rm --name "$name" --network none --entrypoint /bin/sh \
      "$image" -c "$words" 2>&1)
  else
    out=$(old=$IFS; IFS=$nl; set -f; set -- $words; IFS=$old; first=$1; shift
      timeout 60 docker run --rm --name "$name" --network none --entrypoint "$first" \
        "$image" "$@" 2>&1)
  fi
  code=$?
  docker rm -f "$name" >/dev/null 2>&1
  case $code in
    126|127)
      printf '%s\n' "$out" | tail -n 3 | sed 's/^/@log /'
      echo "@error health-missing $code"
      return 1 ;;
  esac
  mkdir -p "$cache" && : > "$cache/$key"
  echo "@probe passed"
  return 0
}

# http_code URL TIMEOUT: the HTTP status URL answers (000 when it does not answer), with
# whichever client the host has: curl, wget or python3.
http_code() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -w '%{http_code}' --max-time "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    code=$(wget -q -S -O /dev/null -T "$2" "$1" 2>&1 | awk '/^ *HTTP\//{c=$2} END{print c}')
    echo "${code:-000}"
  elif command -v python3 >/dev/null 2>&1; then
    python3 - "$1" "$2" <<'PY'
import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except Exception:
    print("000")
PY
  else
    echo none
  fi
}

# address NETWORK ID: the container's IP address on NETWORK.
address() {
  docker inspect --format "{{with index .NetworkSettings.Networks \"$1\"}}{{.IPAddress}}{{end}}" "$2"
}

# verify NETWORK PORT TIMEOUT PATHS ID...: every path (one a line) must answer 2xx from every
# container, requested from the host on the Docker network. Prints `@verified` or
# `@error verify PATH ID CODE` for the first failure.
verify() {
  network=$1 port=$2 limit=$3 paths=$4
  shift 4
  for id in "$@"; do
    ip=$(address "$network" "$id")
    if [ -z "$ip" ]; then
      echo "@error verify - $id no-address"
      return 1
    fi
    for path in $paths; do
      code=$(http_code "http://$ip:$port$path" "$limit")
      case $code in
        2??) ;;
        none) echo "@error verify-no-client"; return 1 ;;
        *) echo "@error verify $path $id $code"; return 1 ;;
      esac
    done
  done
  echo "@verified $(echo "$paths" | wc -w) path(s) on $# container(s)"
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
