# PID 1 of the app's tasks on Swarm (web and the migration job), wrapped around the app's own
# command. Exports each Docker secret mounted in /run/secrets as an environment variable named
# like its file (the app reads the same variables as under Compose), then runs COMMAND. On
# SIGTERM it keeps the app serving, healthy, for DRAIN_SECONDS and only then passes SIGTERM
# on, so the app's own graceful stop comes after Traefik's Swarm provider stopped routing to
# this task: Swarm sends SIGTERM about 2 s after it set the task's desired state to shutdown,
# and the provider drops such a task only at its next poll (refreshSeconds) plus its throttle.
# (No drain file: Traefik's health check would drop the task at once, before its replacement
# is routed.) Exits with the app's exit code.
# Usage: entrypoint.sh DRAIN_SECONDS COMMAND...
# shellcheck shell=sh
set -u
drain_seconds=$1
shift
for secret in /run/secrets/*; do
  [ -f "$secret" ] || continue
  name=${secret##*/}
  case $name in '' | [0-9]* | *[!A-Za-z0-9_]*) continue ;; esac
  export "$name=$(cat "$secret")"
done

term=''
trap 'term=1' TERM INT
"$@" &
child=$!
while :; do
  if [ "$term" = 1 ]; then
    term=draining
    trap '' TERM INT
    sleep "$drain_seconds"
    kill -TERM "$child" 2>/dev/null
  fi
  wait "$child"
  code=$?
  # A SIGTERM interrupts `wait`: drain, then wait for the app's own exit.
  [ "$term" = 1 ] || break
done
exit "$code"
