# First half of rolling SERVICE: start COUNT new containers beside the OLD ones (by id), make
# sure they work, and let them into the proxy's pool. First of all, the healthcheck's program
# must exist in IMAGE (`health_probe`), or nothing starts.
#
# With HOLD_FILE (the check runs in a shell, so its test of that file can hold a container
# back): the new containers start held out of the pool (their healthcheck fails while the file
# exists, so the proxy never routes to them); once the check's own probe passes in each
# (`docker exec`), every VERIFY_PATH (one a line) must answer 2xx from every new container on
# NETWORK at PORT (`verify`); only then is the hold lifted and Docker's healthcheck admits
# them. A version that is healthy but fails its API never serves a request. Without
# HOLD_FILE (exec-form checks, rollbacks): wait until healthy, then verify.
#
# STAGE splits this for a caller with work to do between the start and the verification
# (`db.cutover` migrates the data meanwhile): `held` stops once the held containers are ready
# (@held), leaving them held; `open` then verifies, releases and waits for them (the new
# containers are the service's containers not in OLD). `all` does both in one go.
#
# Fails fast when a container exits or turns unhealthy, and gives up after TIMEOUT seconds.
# On failure or interrupt (TERM) the new containers are retired (drained first, as a proxy may
# already route to healthy ones), so the old ones keep serving untouched. With no old
# containers (a first deploy) this is `up -d --wait`, then the verification.
# Usage: roll_up.sh COMPOSE_FILE PROJECT SERVICE COUNT TIMEOUT DRAIN_FILE SETTLE GRACE
#                   UNHEALTHY_TIMEOUT PROBE_CACHE IMAGE PROBE_SPEC NETWORK PORT VERIFY_TIMEOUT
#                   VERIFY_PATHS HOLD_FILE READY_GRACE STAGE [OLD_ID...]
# shellcheck disable=SC2086,SC2046  # lists of container ids split on purpose
set -u
compose=$1 project=$2 service=$3 count=$4 timeout=$5 drain_file=$6 settle=$7 grace=$8
unhealthy_timeout=$9 probe_cache=${10} image=${11} probe_spec=${12} network=${13} port=${14}
verify_timeout=${15} verify_paths=${16} hold_file=${17} ready_grace=${18} stage=${19}
shift 19
old=" $* "
total=$(($# + count))
nl='
'

new_ids() {
  service_ids "$project" "$service" | while read -r id; do
    case $old in *" $id "*) ;; *) echo "$id" ;; esac
  done
}

give_up() {
  trap '' TERM INT HUP
  retire "$drain_file" "$settle" "$grace" "$unhealthy_timeout" $(new_ids)
}

show_logs() {
  docker logs --tail 15 "$1" 2>&1 | sed 's/^/@log /'
}

[ "$stage" = open ] || health_probe "$probe_cache" "$image" "$probe_spec" || exit 4

# check_new ID...: the verification of the new containers; on failure they are retired.
check_new() {
  if ! verify "$network" "$port" "$verify_timeout" "$verify_paths" "$@"; then
    for id in "$@"; do show_logs "$id"; done
    give_up
    exit 5
  fi
}

# wait_healthy LIMIT TOLERATE ID...: until every container is running and healthy. A
# container that exits fails at once; one that is unhealthy fails at once unless TOLERATE
# (just released from a hold: it turns healthy at its next probe). LIMIT: seconds.
wait_healthy() {
  limit=$(($(date +%s) + $1)) tolerate=$2
  shift 2
  while :; do
    pending=0
    bad=
    if ! list=$(states "$@") || [ -z "$list" ]; then
      echo "@error inspect"
      give_up
      exit 1
    fi
    while read -r id status health; do
      case "$status $health" in
        "running healthy"|"running none") ;;
        "running starting"|"created starting"|"created none") pending=1 ;;
        "running unhealthy") if [ "$tolerate" = 1 ]; then pending=1; else bad="$id $status $health"; fi ;;
        *) bad="$id $status $health" ;;
      esac
    done <<STATES
$list
STATES
    if [ -n "$bad" ]; then
      set -- $bad
      show_logs "$1"
      echo "@error unhealthy $bad"
      give_up
      exit 2
    fi
    [ "$pending" -eq 0 ] && return 0
    if [ "$(date +%s)" -ge "$limit" ]; then
      echo "@error timeout $timeout"
      give_up
      exit 3
    fi
    sleep 0.2
  done
}

# found_new: the new containers into `new` (and @new): exactly COUNT of them, or give up.
found_new() {
  new=$(new_ids)
  echo "@new" $new
  if [ "$(echo $new | wc -w)" -ne "$count" ]; then
    echo "@error count $(echo $new | wc -w) $count"
    give_up
    exit 1
  fi
}

trap 'echo "@interrupted"; give_up; exit 130' TERM INT HUP

started=$(now)
if [ $# -eq 0 ]; then
  if ! out=$(docker compose -f "$compose" up -d --no-deps --wait --wait-timeout "$timeout" \
      --scale "$service=$count" "$service" 2>&1); then
    printf '%s\n' "$out" | tail -n 5
    for id in $(new_ids); do show_logs "$id"; done
    echo "@error first-start"
    give_up
    exit 2
  fi
  new=$(new_ids)
  echo "@new" $new
  echo "@healthy $(since "$started")"
  check_new $new
  exit 0
fi

if [ "$stage" = open ]; then
  found_new
  check_new $new
  unhold "$hold_file" $new
  wait_healthy "$unhealthy_timeout" 1 $new
  echo "@healthy $(since "$started")"
  exit 0
fi

if ! out=$(docker compose -f "$compose" up -d --no-deps --no-recreate \
    --scale "$service=$total" "$service" 2>&1); then
  printf '%s\n' "$out" | tail -n 15
  echo "@error compose-up"
  give_up
  exit 1
fi
found_new
if [ -z "$hold_file" ]; then
  wait_healthy "$timeout" 0 $new
  echo "@healthy $(since "$started")"
  check_new $new
  exit 0
fi

if ! out=$(hold "$hold_file" $new 2>&1); then
  echo "@error hold $out"
  give_up
  exit 1
fi
if ! ready=$(wait_ready "$timeout" "$ready_grace" "${probe_spec#*"$nl"}" $new); then
  set -- $ready
  [ -n "${1:-}" ] && show_logs "$1"
  case $ready in timeout*) echo "@error $ready" ;; *) echo "@error unhealthy $ready" ;; esac
  give_up
  exit 2
fi
echo "@ready $(since "$started")"
if [ "$stage" = held ]; then
  echo "@held" $new
  exit 0
fi
check_new $new
unhold "$hold_file" $new
wait_healthy "$unhealthy_timeout" 1 $new
echo "@healthy $(since "$started")"
