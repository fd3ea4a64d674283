# The self-healing watcher of one app on one host, as the deploy user: installed as
# APP_DIR/heal/watch.sh by `inv setup` / `inv deploy` (install.sh) and started by ensure.sh.
#
# It restarts (`docker restart -t GRACE`, same container id) a web container of PROJECT that
# Docker has reported unhealthy for RESTART_AFTER seconds, except:
# - while the host's deploy lock APP_DIR/lock is held by a run that lives (`lock_held`,
#   `lock_stale` with STALE_AFTER, from the deploy's lock.sh, prepended to this file): every
#   web container counts as in the rollout, so it waits until the lock is gone (and the
#   container still unhealthy). A stale lock (its run died) defers nothing: the hung app
#   is healed while the next deploy is awaited;
# - when DRAIN_FILE exists in the container: a deploy or a cutover is draining it; when
#   DRAIN_FILE.hold exists: a deploy holds it out of the pool until it is verified;
# - after MAX_RESTARTS restarts of the container within WINDOW seconds: it gives up, records
#   it and alerts Slack once (the URL in APP_DIR/heal/slack_webhook, mode 600), and leaves
#   the container to a person until it is healthy again.
# Each restart and give-up is a JSON line in APP_DIR/audit.log; APP_DIR/heal/history/ID keeps
# the container's restarts (`EPOCH CRASHES`: Docker's count of policy restarts just before,
# which `docker restart` resets) for `inv status`; APP_DIR/heal/watch.log says what it did.
#
# Docker's health_status events say when a container turns unhealthy (APP_DIR/heal/run/
# since.ID); a tick each second acts on the deadlines; every SWEEP seconds one `docker ps`
# catches what the events missed. One watcher per app (flock on APP_DIR/heal/watch.lock); it
# stops when APP_DIR/heal/watch.sh is removed or replaced by another install.
# Usage: watch.sh APP_DIR PROJECT SERVICE ENV DRAIN_FILE RESTART_AFTER GRACE MAX_RESTARTS
#                 WINDOW SWEEP STALE_AFTER
# shellcheck disable=SC2086  # the fields of one `docker inspect` line split on purpose
set -u
# Its own process group, so that stopping it (`kill -- -PID`) and its own `kill 0` reach its
# children and nothing else.
if [ "$(awk '{print $5}' "/proc/$$/stat")" != "$$" ]; then
  exec setsid sh "$0" "$@"
fi
app_dir=$1 project=$2 service=$3 env=$4 drain_file=$5 after=$6 grace=$7 max=$8 window=$9
sweep_every=${10} stale_after=${11:-60}
dir="$app_dir/heal"
run="$dir/run"
lock="$app_dir/lock"
me=$$
who="watcher@$(hostname 2>/dev/null || echo host)"
exec 9>>"$dir/watch.lock"
flock -n 9 || exit 0
echo "$me" > "$dir/pid"
rm -rf "$run"
mkdir -p "$run" "$dir/history" "$dir/gave-up"
installed=$(cksum < "$dir/watch.sh")

now() { date +%s; }

log() {
  if [ "$(wc -c < "$dir/watch.log" 2>/dev/null || echo 0)" -gt 1048576 ]; then
    tail -c 262144 "$dir/watch.log" > "$run/log.tmp" && cat "$run/log.tmp" > "$dir/watch.log"
  fi
  printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >> "$dir/watch.log"
}

# note ID TEXT: log TEXT unless it is what was last said about ID (no line each second).
note() {
  [ "$(cat "$run/note.$1" 2>/dev/null)" = "$2" ] && return 0
  printf '%s\n' "$2" > "$run/note.$1"
  log "$2"
}

# audit RESULT ID NAME SECONDS MESSAGE [EPOCH]: one line in the host's audit log.
audit() {
  printf '{"action": "heal", "container": "%s", "env": "%s", "id": "%.12s", "message": "%s", "result": "%s", "seconds": %s, "time": "%s", "version": "", "who": "%s"}\n' \
    "$3" "$env" "$2" "$5" "$1" "$4" "$(date -u -d "@${6:-$(now)}" +%Y-%m-%dT%H:%M:%SZ)" "$who" \
    >> "$app_dir/audit.log"
}

# post TEXT: one Slack message; prints the HTTP status (000: no answer). The URL is read from
# its file by the client, never put on a command line.
post() {
  hook="$dir/slack_webhook"
  [ -s "$hook" ] || { echo none; return 0; }
  body=$(printf '{"text": ":rotating_light: [%s/%s] %s"}' "$project" "$env" "$1")
  if command -v curl >/dev/null 2>&1; then
    { printf 'url = "'; tr -d '\n' < "$hook"; printf '"\n'; } |
      curl -s -o /dev/null -w '%{http_code}' -m 10 -K - -H 'Content-Type: application/json' \
        --data-binary "$body"
  elif command -v python3 >/dev/null 2>&1; then
    python3 - "$hook" "$body" <<'PY'
import sys, urllib.error, urllib.request
url = open(sys.argv[1]).read().strip()
request = urllib.request.Request(url, data=sys.argv[2].encode(),
                                 headers={"Content-Type": "application/json"})
try:
    print(urllib.request.urlopen(request, timeout=10).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except Exception:
    print("000")
PY
  elif wget -q -O /dev/null -T 10 --header='Content-Type: application/json' \
      --post-data="$body" -i "$hook" 2>/dev/null; then
    echo 200
  else
    echo 000
  fi
}

# alert ID NAME: deliver the give-up alert of ID (three attempts at most, across sweeps).
alert() {
  tries=$(cat "$dir/gave-up/$1" 2>/dev/null)
  case $tries in sent|none|3) return 0 ;; esac
  code=$(post "container $2 ($(echo "$1" | cut -c1-12)) of service $service on $(hostname) keeps turning unhealthy: restarted $max times within ${window}s, the watcher has stopped restarting it. See \`inv logs --env=$env --service=$service\`, fix it, then restart it (\`docker restart $2\`) or deploy.")
  case $code in
    none) echo none > "$dir/gave-up/$1"; log "no Slack alert for $2: no webhook configured" ;;
    2??) echo sent > "$dir/gave-up/$1"; log "alerted Slack about $2" ;;
    *) echo $((${tries:-0} + 1)) > "$dir/gave-up/$1"; log "Slack alert about $2 failed (HTTP $code)" ;;
  esac
}

# consider ID: restart the container, leave it alone, or give up on it (see the top). One left
# alone (draining, given up, a failed restart) loses its deadline: the next sweep sets one.
# deploying: whether a run that lives holds the deploy lock.
deploying() {
  lock_held "$lock" && ! lock_stale "$lock" "$stale_after"
}

consider() {
  id=$1
  if deploying; then
    note "$id" "deferred $(echo "$id" | cut -c1-12): the deploy lock is held ($(lock_holder "$lock" | sed -n 's/.*"who": *"\([^"]*\)".*/\1/p'))"
    return 0
  fi
  if ! info=$(docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}} {{.Name}}' "$id" 2>/dev/null); then
    rm -f "$run/since.$id" "$run/note.$id"
    return 0
  fi
  set -- $info
  if [ "$1 $2" != "running unhealthy" ]; then
    rm -f "$run/since.$id"
    return 0
  fi
  crashes=$3 name=${4#/}
  if docker cp "$id:$drain_file" - >/dev/null 2>&1; then
    note "$id" "left $name alone: it is draining ($drain_file exists)"
    rm -f "$run/since.$id"
    return 0
  fi
  if docker cp "$id:$drain_file.hold" - >/dev/null 2>&1; then
    note "$id" "left $name alone: a deploy holds it out of the pool ($drain_file.hold exists)"
    rm -f "$run/since.$id"
    return 0
  fi
  if [ -e "$dir/gave-up/$id" ]; then
    alert "$id" "$name"
    rm -f "$run/since.$id"
    return 0
  fi
  unhealthy=$(( $(now) - $(cat "$run/since.$id" 2>/dev/null || now) ))
  recent=$(awk -v t=$(( $(now) - window )) '$1 > t' "$dir/history/$id" 2>/dev/null | wc -l)
  if [ "$recent" -ge "$max" ]; then
    echo 0 > "$dir/gave-up/$id"
    log "gave up on $name: unhealthy again after $recent restarts within ${window}s"
    audit gave-up "$id" "$name" "$unhealthy" "unhealthy again after $recent restarts within ${window}s: left for a person"
    alert "$id" "$name"
    rm -f "$run/since.$id"
    return 0
  fi
  deploying && return 0
  started=$(now)
  if ! out=$(docker restart -t "$grace" "$id" 2>&1); then
    note "$id" "restarting $name failed: $(printf '%s' "$out" | tail -n 1)"
    rm -f "$run/since.$id"
    return 0
  fi
  at=$(now)
  echo "$at $crashes" >> "$dir/history/$id"
  rm -f "$run/since.$id" "$run/note.$id"
  log "restarted $name: unhealthy for ${unhealthy}s (restart $((recent + 1)) of at most $max in ${window}s, $((at - started))s)"
  audit restarted "$id" "$name" "$unhealthy" "unhealthy for ${unhealthy}s: restarted ($((recent + 1)) of at most $max in ${window}s)" "$at"
}

# sweep: one listing of the web containers. Unhealthy ones without a deadline get one (missed
# events, a fresh start); deadlines of containers that are no longer unhealthy are dropped,
# and so are the records of containers that are gone.
sweep() {
  listed=$(now)
  list=$(docker ps -a --no-trunc --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$service" --format '{{.ID}} {{.Status}}') || return 0
  sick=$(printf '%s\n' "$list" | awk '/\(unhealthy\)$/ {print $1}')
  for id in $sick; do
    [ -e "$run/since.$id" ] || echo "$listed" > "$run/since.$id"
  done
  for file in "$run"/since.* "$dir"/history/* "$dir"/gave-up/*; do
    [ -e "$file" ] || continue
    id=${file##*/}
    id=${id#since.}
    case $file in
      */since.*) printf '%s\n' "$sick" | grep -qx "$id" ||
        [ "$(cat "$file")" -ge "$listed" ] || rm -f "$file" ;;
      *) printf '%s\n' "$list" | grep -q "^$id " || rm -f "$file" ;;
    esac
  done
}

# events: health changes of the web containers, as they happen (a child of the watcher; each
# stream ends within a minute, so it never outlives the watcher by more than that, and the
# next one starts where it ended).
events() {
  last=$(now)
  while kill -0 "$me" 2>/dev/null; do
    until=$(( $(now) + 60 ))
    docker events --since "$last" --until "$until" --filter type=container \
      --filter event=health_status --filter "label=com.docker.compose.project=$project" \
      --filter "label=com.docker.compose.service=$service" \
      --format '{{.ID}} {{.Time}} {{.Status}}' 2>/dev/null |
      while read -r id at _ health; do
        case $health in
          unhealthy) [ -e "$run/since.$id" ] || echo "$at" > "$run/since.$id" ;;
          healthy)
            rm -f "$run/since.$id" "$run/note.$id"
            if [ -e "$dir/gave-up/$id" ]; then
              rm -f "$dir/gave-up/$id"
              log "$(echo "$id" | cut -c1-12) is healthy again: watching it again"
            fi ;;
        esac
      done
    last=$(now)
    if [ "$last" -lt "$until" ]; then
      sleep 1
    else
      last=$until
    fi
  done
}

trap 'trap - TERM INT; kill -TERM 0 2>/dev/null; exit 0' TERM INT
events 9>&- &
log "watching $service of $project: restart after ${after}s unhealthy (grace ${grace}s), at most $max in ${window}s"
tick=0
while [ -f "$dir/watch.sh" ] && [ "$(cksum < "$dir/watch.sh")" = "$installed" ]; do
  [ $((tick % sweep_every)) -eq 0 ] && sweep
  tick=$((tick + 1))
  for file in "$run"/since.*; do
    [ -e "$file" ] || continue
    [ $(( $(now) - $(cat "$file") )) -ge "$after" ] && consider "${file##*/since.}"
  done
  sleep 1
done
log "stopping: $dir/watch.sh was removed or replaced"
trap - TERM INT
kill -TERM 0 2>/dev/null
