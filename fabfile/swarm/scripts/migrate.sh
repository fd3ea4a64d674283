# Runs the release's migration job (MIGRATE_FILE: a stack file holding one `replicated-job`
# service) before any web task changes: removes the job of the previous deploy, deploys this
# one into the stack, waits until its task completes or fails, and prints its logs. The
# web service is updated only when this exits 0. An interrupt lets the migration finish.
# Usage: migrate.sh MIGRATE_FILE STACK RESOLVE_IMAGE TIMEOUT
# shellcheck shell=sh
set -u
trap '' TERM INT HUP
file=$1 stack=$2 resolve=$3 timeout=$4
service="${stack}_migrate"
if docker service inspect "$service" >/dev/null 2>&1; then
  docker service rm "$service" >/dev/null
  while docker service inspect "$service" >/dev/null 2>&1; do sleep 0.2; done
fi
if ! out=$(cd "$(dirname "$file")" && docker stack deploy --with-registry-auth \
    --resolve-image "$resolve" -c "$(basename "$file")" "$stack" 2>&1); then
  printf '%s\n' "$out" | tail -n 15
  echo "@error deploy"
  exit 1
fi
deadline=$(($(date +%s) + timeout))
state=
while :; do
  state=$(docker service ps --no-trunc --format '{{.CurrentState}}|{{.Error}}' "$service" 2>/dev/null | head -n 1)
  case ${state%% *} in
    Complete | Failed | Rejected | Shutdown | Orphaned) break ;;
  esac
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "@error timeout $timeout"
    break
  fi
  sleep 0.5
done
docker service logs --raw --no-task-ids "$service" 2>&1 | tail -n 40 | sed 's/^/@log /'
case ${state%% *} in
  Complete) echo "@migrate-exit 0"; exit 0 ;;
esac
echo "@error job ${state:-unknown}"
exit 1
