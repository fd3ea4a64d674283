# Everything a deploy decides on, gathered in one round trip as a line-oriented report that
# `fabfile/deploy/facts.py` parses. With LOCK_MODE=take it first takes the host's deploy lock
# (`lock.sh`), polling for up to LOCK_WAIT seconds while another holds it; a lock already
# holding TOKEN counts as taken (`db.cutover` deploys under the lock it holds). With
# LOCK_MODE=take-over, a lock that turns stale meanwhile (no heartbeat for STALE_AFTER
# seconds, no phase running: its run died) is taken over when it was a deploy's or a
# rollback's, and TAKEOVER_AUDIT is appended to the audit log; the dead lock is kept as
# `lock.dead`. A lock another run holds is described: its heartbeats' age, stale or not.
# Usage: facts.sh APP_DIR PROJECT NETWORK LOCK_MODE LOCK_WAIT HOLDER_JSON TOKEN STALE_AFTER
#                 TAKEOVER_AUDIT [IMAGE...]
set -u
app_dir=$1 project=$2 network=$3 lock_mode=$4 lock_wait=$5 holder=$6 token=$7
stale_after=$8 takeover_audit=$9
shift 9
lock="$app_dir/lock"
b64() { lock_b64; }

echo "@facts 1"
if command -v docker >/dev/null 2>&1; then
  if out=$(docker version --format '{{.Server.Version}}' 2>&1); then
    echo "docker $out"
    echo "compose $(docker compose version --short 2>/dev/null || echo missing)"
  else
    echo "docker_error $(printf '%s' "$out" | tail -n 3 | b64)"
  fi
else
  echo "docker missing"
fi

if [ ! -d "$app_dir" ]; then
  echo "app_dir missing"
  echo "@end"
  exit 0
fi
echo "app_dir present"
echo "disk_free_kb $(df -Pk "$app_dir" | awk 'NR==2 {print $4}')"

case $lock_mode in
  take|take-over)
    over=
    [ "$lock_mode" = take ] || over=$stale_after
    lock_take "$lock" "$holder" "$token" "$lock_wait" "$over" "$takeover_audit"
    case $? in
      0) echo "lock taken" ;;
      3) echo "lock taken-over"
         echo "dead_age $(cat "$lock.dead/stale_for" 2>/dev/null)"
         if dead=$(lock_holder "$lock.dead"); then
           echo "dead_holder $(printf '%s\n' "$dead" | b64)"
         fi ;;
      2) echo "lock unwritable" ;;
      *) echo "lock held" ;;
    esac ;;
  *)
    if lock_held "$lock"; then echo "lock held"; else echo "lock free"; fi ;;
esac
if holder_now=$(lock_holder "$lock"); then
  echo "holder $(printf '%s\n' "$holder_now" | b64)"
fi
if lock_held "$lock" && ! lock_ours "$lock" "$token"; then
  lock_report "$lock" "$stale_after"
fi

if [ -f "$app_dir/database-backend" ]; then
  echo "database_backend $(head -c 64 "$app_dir/database-backend" | tr -cd '[:lower:]')"
fi

if docker network inspect "$network" >/dev/null 2>&1; then
  echo "network present"
else
  echo "network missing"
fi

for dir in "$app_dir"/releases/*/; do
  [ -d "$dir" ] || continue
  id=$(basename "$dir")
  if [ -e "$dir/.live" ]; then echo "release $id live"; else echo "release $id staged"; fi
  if grep -q "^DATABASE_URL='sqlite:" "$dir/app.env" 2>/dev/null; then echo "release_db $id sqlite"; fi
done

current=$(readlink "$app_dir/current" 2>/dev/null || true)
if [ -n "$current" ] && [ -d "$app_dir/current/" ]; then
  echo "current $(basename "$current")"
  (cd "$app_dir/current/" && find . -type f ! -name .live | sort) | while IFS= read -r path; do
    path=${path#./}
    file="$app_dir/current/$path"
    echo "file $(sha256sum < "$file" | cut -d' ' -f1) $(stat -c %a "$file") $path"
    case $path in
      *.env)
        while IFS= read -r line || [ -n "$line" ]; do
          case $line in ''|'#'*) continue ;; esac
          echo "envline ${line%%=*} $(printf '%s' "$line" | sha256sum | cut -d' ' -f1) $path"
        done < "$file" ;;
      *)
        echo "content $(b64 < "$file") $path" ;;
    esac
  done
fi

ids=$(docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$project" 2>/dev/null)
if [ -n "$ids" ]; then
  # shellcheck disable=SC2086  # the ids split on purpose
  docker inspect --format 'container {{.Id}} {{index .Config.Labels "com.docker.compose.service"}} {{index .Config.Labels "com.docker.compose.oneoff"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.StartedAt}} {{.Name}} {{.Config.Image}} {{index .Config.Labels "com.docker.compose.project.config_files"}}' $ids 2>/dev/null
fi
# shellcheck disable=SC2086  # the ids split on purpose
heal_facts "$app_dir" $ids

if page=$(docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{json .Config.Labels}}' "$project-maintenance" 2>/dev/null); then
  echo "maintenance $(printf '%s\n' "$page" | b64)"
fi

if [ $# -gt 0 ]; then
  present=$(docker image ls --format '{{.Repository}}:{{.Tag}}' 2>/dev/null)
  for image in "$@"; do
    if printf '%s\n' "$present" | grep -qxF "$image"; then
      echo "image present $image"
    else
      echo "image missing $image"
    fi
  done
fi

if [ -s "$app_dir/audit.log" ]; then
  echo "audit $(grep -v -e '^{"action": "heal"' -e '^{"action": "exec"' "$app_dir/audit.log" | tail -n 1 | b64)"
fi
echo "@end"
