# The self-healing watcher's part of a host's facts (prepended to the deploy's facts.sh).
# shellcheck shell=sh

# heal_facts APP_DIR ID...: `watcher FINGERPRINT running|stopped SUPERVISOR` when one is
# installed, then for each container `restarts ID DOCKER_COUNT HEALTH_RESTARTS LAST_EPOCH
# CRASHES_BEFORE gave-up|ok` (Docker's policy restarts since the last manual start; the
# watcher's restarts, the last one's time and the policy restarts counted before each).
heal_facts() {
  heal="$1/heal"
  shift
  if [ -f "$heal/fingerprint" ]; then
    state=running
    flock -n "$heal/watch.lock" true 2>/dev/null && state=stopped
    echo "watcher $(cat "$heal/fingerprint") $state $(cat "$heal/supervisor" 2>/dev/null || echo none)"
  fi
  [ $# -gt 0 ] || return 0
  docker inspect --format '{{.Id}} {{.RestartCount}}' "$@" 2>/dev/null | while read -r id count; do
    kept=0
    [ -e "$heal/gave-up/$id" ] && kept=1
    # shellcheck disable=SC2002  # a missing file is an empty history, and awk still prints
    cat "$heal/history/$id" 2>/dev/null | awk -v id="$id" -v count="$count" -v kept="$kept" \
      '{n++; last=$1; crashes+=$2}
       END {printf "restarts %s %s %d %d %d %s\n", id, count, n, last, crashes, kept ? "gave-up" : "ok"}'
  done
}
