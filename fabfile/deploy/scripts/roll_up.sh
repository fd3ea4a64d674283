# First half of rolling SERVICE: start COUNT new containers beside the old ones (named by id),
# and wait until every new one is healthy. Fails fast when one turns unhealthy or exits, and
# gives up after TIMEOUT seconds. On failure or interrupt (TERM) it removes the new containers,
# so the old ones keep serving untouched. With no old containers (a first deploy) this is
# `up -d --wait`.
# Usage: roll_up.sh COMPOSE_FILE PROJECT SERVICE COUNT TIMEOUT [OLD_ID...]
# shellcheck disable=SC2086,SC2046  # lists of container ids and services split on purpose
set -u
compose=$1 project=$2 service=$3 count=$4 timeout=$5
shift 5
old=" $* "
total=$(($# + count))
now() { date +%s.%N; }
started=$(now)

new_ids() {
  docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$service" \
    --filter "label=com.docker.compose.oneoff=False" | while read -r id; do
      case $old in *" $id "*) ;; *) echo "$id" ;; esac
    done
}

remove_new() {
  trap '' TERM INT HUP
  ids=$(new_ids)
  if [ -n "$ids" ]; then
    docker rm -f $ids >/dev/null 2>&1
    echo "@removed" $ids
  fi
}

show_logs() {
  docker logs --tail 15 "$1" 2>&1 | sed 's/^/@log /'
}

trap 'echo "@interrupted"; remove_new; exit 130' TERM INT HUP

if [ $# -eq 0 ]; then
  if ! out=$(docker compose -f "$compose" up -d --no-deps --wait --wait-timeout "$timeout" \
      --scale "$service=$count" "$service" 2>&1); then
    printf '%s\n' "$out" | tail -n 5
    for id in $(new_ids); do show_logs "$id"; done
    echo "@error first-start"
    remove_new
    exit 2
  fi
  echo "@new" $(new_ids)
  echo "@healthy $(echo "$(now) $started" | awk '{printf "%.2f", $1 - $2}')"
  exit 0
fi

if ! out=$(docker compose -f "$compose" up -d --no-deps --no-recreate \
    --scale "$service=$total" "$service" 2>&1); then
  printf '%s\n' "$out" | tail -n 15
  echo "@error compose-up"
  remove_new
  exit 1
fi
new=$(new_ids)
echo "@new" $new
if [ "$(echo $new | wc -w)" -ne "$count" ]; then
  echo "@error count $(echo $new | wc -w) $count"
  remove_new
  exit 1
fi
up=$(now)
deadline=$(($(date +%s) + timeout))
while :; do
  pending=0
  bad=
  states=$(docker inspect --format '{{.Id}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $new 2>&1) || {
    echo "@error inspect $states"; remove_new; exit 1; }
  while read -r id status health; do
    case "$status $health" in
      "running healthy"|"running none") ;;
      "running starting"|"created starting"|"created none") pending=1 ;;
      *) bad="$id $status $health" ;;
    esac
  done <<STATES
$states
STATES
  if [ -n "$bad" ]; then
    set -- $bad
    show_logs "$1"
    echo "@error unhealthy $bad"
    remove_new
    exit 2
  fi
  if [ "$pending" -eq 0 ]; then
    echo "@healthy $(echo "$(now) $up" | awk '{printf "%.2f", $1 - $2}')"
    exit 0
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "@error timeout $timeout"
    remove_new
    exit 3
  fi
  sleep 0.2
done
