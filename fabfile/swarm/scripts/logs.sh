# The logs of a stack's services, through the manager (Swarm gathers them from every node),
# one service after the other, each after a `@service NAME` line.
# Usage: logs.sh STACK TAIL SINCE [SERVICE...]   (no SERVICE: every service of the stack)
# shellcheck shell=sh
set -u
stack=$1 tail=$2 since=$3
shift 3
if [ $# -eq 0 ]; then
  # shellcheck disable=SC2046  # service names split on purpose
  set -- $(docker service ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Name}}')
else
  names=
  for name in "$@"; do names="$names ${stack}_$name"; done
  # shellcheck disable=SC2086  # service names split on purpose
  set -- $names
fi
if [ $# -eq 0 ]; then
  echo "@error nothing-deployed"
  exit 3
fi
code=0
for service in "$@"; do
  echo "@service $service"
  if [ -n "$since" ]; then
    docker service logs --no-task-ids --timestamps --tail "$tail" --since "$since" "$service" 2>&1 || code=1
  else
    docker service logs --no-task-ids --timestamps --tail "$tail" "$service" 2>&1 || code=1
  fi
done
exit "$code"
