# PID 1 of the app's tasks on Swarm (web and the migration job), wrapped around the app's own
# command. Exports each Docker secret mounted in /run/secrets as an environment variable named
# like its file (the app reads the same variables as under Compose), then runs COMMAND. On
# SIGTERM it creates DRAIN_FILE (the healthcheck fails from then on), keeps the app serving for
# DRAIN_SECONDS and only then passes SIGTERM on, so the app's own graceful stop comes after
# Traefik's Swarm provider stopped routing to this task: Swarm sends SIGTERM about 2 s after it
# set the task's desired state to shutdown, and the provider drops such a task only at its next
# poll (refreshSeconds) plus its throttle. Exits with the app's exit code.
# Usage: entrypoint.sh DRAIN_SECONDS DRAIN_FILE COMMAND...
# shellcheck shell=sh
set -u
drain_seconds=$1 drain_file=$2
shift 2
for secret in /run/secrets/*; do
  [ -f "$secret" ] || continue
  name=${secret##*/}
  case $name in '' | [0-9]* | *[!A-Za-z0-9_]*) continue ;; esac
  export "$name=$(cat "$secret")"
done

"$@" &
child=$!
# shellcheck disable=SC2317  # runs from the trap
stop() {
  trap '' TERM INT
  : > "$drain_file" 2>/dev/null
  sleep "$drain_seconds"
  kill -TERM "$child" 2>/dev/null
}
trap stop TERM INT
code=0
while kill -0 "$child" 2>/dev/null; do
  wait "$child"
  code=$?
done
exit "$code"
