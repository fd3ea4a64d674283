# Second half of rolling SERVICE: take the OLD containers out of the proxy's pool before
# stopping them. Creates DRAIN_FILE in each (its healthcheck then fails), waits until Docker
# reports each unhealthy (the proxy drops unhealthy containers on that event), waits SETTLE
# seconds (the proxy's throttle plus a margin; not when they have been unhealthy that long
# already, as after `db.cutover`'s drain), stops them with GRACE seconds for in-flight
# requests, and removes them. Interrupts are ignored: once the old ones leave the pool,
# finishing is the only way that fails no request. If the drain itself fails, the old ones
# are un-drained and, once healthy again, the new ones are retired instead.
# SKIP_DRAIN=1 goes straight to the stop: a test-only switch proving the drain matters.
# Usage: roll_drain.sh PROJECT SERVICE DRAIN_FILE SETTLE GRACE TIMEOUT SKIP_DRAIN OLD_ID...
# shellcheck disable=SC2086,SC2046  # lists of container ids split on purpose
set -u
trap '' TERM INT HUP
project=$1 service=$2 drain_file=$3 settle=$4 grace=$5 timeout=$6 skip=$7
shift 7
old="$*"

undo() {
  undrain "$drain_file" $old
  wait_until in "$timeout" $(running $old)
  retire "$drain_file" "$settle" "$grace" "$timeout" \
    $(service_ids "$project" "$service" | grep -vxF "$(printf '%s\n' $old)")
  echo "@undrained"
}

live=$(running $old)
started=$(now)
if [ "$skip" != 1 ] && [ -n "$live" ]; then
  if ! out=$(drain "$drain_file" $live 2>&1); then
    echo "@error drain $out"
    undo
    exit 1
  fi
  if ! wait_until out "$timeout" $live; then
    echo "@error still-healthy $timeout"
    undo
    exit 3
  fi
  echo "@unhealthy $(since "$started")"
  out_for "$settle" $live || sleep "$settle"
fi
echo "@stopping $(since "$started")"
if [ -n "$live" ]; then
  docker stop -t "$grace" $live >/dev/null
fi
docker rm -f $old >/dev/null 2>&1
echo "@stopped $(since "$started")"
