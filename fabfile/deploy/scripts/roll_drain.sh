# Second half of rolling SERVICE: take the OLD containers out of the proxy's pool before
# stopping them. Creates DRAIN_FILE in each (its healthcheck then fails), waits until Docker
# reports each unhealthy (the proxy drops unhealthy containers on that event), waits SETTLE
# seconds (the proxy's throttle plus a margin), stops them with GRACE seconds for in-flight
# requests, and removes them. Until the stop begins, a failure or interrupt undoes the drain
# and removes the new containers; once stopping has begun, it finishes.
# SKIP_DRAIN=1 goes straight to the stop: a test-only switch proving the drain matters.
# Usage: roll_drain.sh PROJECT SERVICE DRAIN_FILE SETTLE GRACE TIMEOUT SKIP_DRAIN OLD_ID...
# shellcheck disable=SC2086,SC2046  # lists of container ids and services split on purpose
set -u
project=$1 service=$2 drain_file=$3 settle=$4 grace=$5 timeout=$6 skip=$7
shift 7
old="$*"
now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.2f", $1 - $2}'; }

undo() {
  trap '' TERM INT HUP
  for id in $old; do
    docker exec "$id" sh -c 'rm -f "$1"' sh "$drain_file" >/dev/null 2>&1
  done
  ids=$(docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$service" \
    --filter "label=com.docker.compose.oneoff=False" | grep -vxF "$(printf '%s\n' $old)")
  if [ -n "$ids" ]; then
    docker rm -f $ids >/dev/null 2>&1
    echo "@removed" $ids
  fi
  echo "@undrained"
}
trap 'echo "@interrupted"; undo; exit 130' TERM INT HUP

running=
for id in $old; do
  state=$(docker inspect --format '{{.State.Status}}' "$id" 2>/dev/null)
  [ "$state" = running ] && running="$running $id"
done

started=$(now)
if [ "$skip" != 1 ] && [ -n "$running" ]; then
  for id in $running; do
    if ! out=$(docker exec "$id" sh -c ': > "$1"' sh "$drain_file" 2>&1); then
      echo "@error drain $id $out"
      undo
      exit 1
    fi
  done
  deadline=$(($(date +%s) + timeout))
  while :; do
    states=$(docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $running 2>/dev/null)
    if ! printf '%s\n' "$states" | grep -q '^running \(healthy\|starting\)$'; then
      break
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "@error still-healthy $timeout"
      undo
      exit 3
    fi
    sleep 0.2
  done
  echo "@unhealthy $(since "$started")"
  sleep "$settle"
fi
trap '' TERM INT HUP
echo "@stopping $(since "$started")"
if [ -n "$running" ]; then
  docker stop -t "$grace" $running >/dev/null
fi
docker rm -f $old >/dev/null 2>&1
echo "@stopped $(since "$started")"
