# Deploys a release's stack file and waits until the swarm converged on it: the web service's
# update completed (its tasks are replaced one batch at a time, each new task `running`, i.e.
# healthy, before the old one is told to stop), REPLICAS of its tasks running the new spec.
# Swarm rolls a failing update back by itself (failure_action: rollback). On any failure
# (rolled back, paused, not converged within TIMEOUT seconds), PREVIOUS (the previous
# release's stack file, if any) is deployed again and waited for, so every service runs one
# release. A node marked down during the update is reported, and the update is forced to
# start again, since Swarm's updater would wait for that node's task forever. Once converged
# it spreads the web tasks when they crowd one node (see `spread`), waits SETTLE seconds,
# until Traefik's Swarm provider, which polls, routes to the new tasks (the smoke test comes
# next), then removes the stack's secrets and configs that no release on this host uses any
# more (Swarm refuses those in use). Interrupts are ignored: the phase is bounded and
# stopping halfway would leave two releases running.
# Usage: stack.sh STACK_FILE STACK SERVICE REPLICAS TIMEOUT RESOLVE_IMAGE APP_DIR SETTLE
#                 APP_LABEL [PREVIOUS]
# shellcheck shell=sh
set -u
trap '' TERM INT HUP
file=$1 stack=$2 service=$3 replicas=$4 timeout=$5 resolve=$6 app_dir=$7 settle=$8
app_label=$9
previous=${10:-}
svc="${stack}_${service}"
down_seen=" "

now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.2f", $1 - $2}'; }
field() { docker service inspect --format "$1" "$svc" 2>/dev/null; }

# report_down: one `@node-down HOST STATUS` per node newly seen down; returns 0 when one was.
report_down() {
  found=1
  for node in $(docker node ls --format '{{.Hostname}}={{.Status}}' 2>/dev/null); do
    case $node in
      *=Down) case $down_seen in *" ${node%%=*} "*) ;; *)
           down_seen="$down_seen${node%%=*} "
           echo "@node-down ${node%%=*}"
           found=0 ;;
         esac ;;
    esac
  done
  return "$found"
}

# What makes a task the current spec's (the API renders a few other fields differently for a
# service's template and for its tasks, e.g. an empty DNSConfig), for services and for tasks.
parts='{{json .ContainerSpec.Image}} {{json .ContainerSpec.Command}} {{json .ContainerSpec.Args}} {{json .ContainerSpec.Env}} {{json .ContainerSpec.Secrets}} {{json .ContainerSpec.Configs}} {{json .ContainerSpec.Healthcheck}} {{json .ContainerSpec.StopGracePeriod}} {{json .ContainerSpec.Mounts}} {{json .Resources}} {{json .Placement}} {{json .Networks}} {{json .ForceUpdate}}'
service_spec=$(printf '%s' "$parts" | sed 's/{{json \./{{json .Spec.TaskTemplate./g')
task_spec=$(printf '%s' "$parts" | sed 's/{{json \./{{json .Spec./g')

# task_ids: the ids of the web service's tasks whose desired state is running.
task_ids() {
  docker service ps -q --no-trunc --filter desired-state=running "$svc" 2>/dev/null
}

# tasks_ok [COUNT]: COUNT (default REPLICAS) tasks with desired state running, all running and
# made from the service's current spec.
tasks_ok() {
  count=${1:-$replicas}
  want=$(field "$service_spec")
  ids=$(task_ids)
  [ -n "$want" ] && [ -n "$ids" ] || return 1
  # shellcheck disable=SC2086  # task ids split on purpose
  states=$(docker inspect --format "{{.Status.State}} $task_spec" $ids 2>/dev/null) || return 1
  [ "$(printf '%s\n' "$states" | grep -c .)" -eq "$count" ] || return 1
  ! printf '%s\n' "$states" | grep -qvxF "running $want"
}

# converge FILE: deploy it and wait; 0 when converged, 3 rolled back, 4 paused, 5 timed out.
converge() {
  started_before=$(field '{{if .UpdateStatus}}{{.UpdateStatus.StartedAt}}{{end}}')
  if ! out=$(cd "$(dirname "$1")" && docker stack deploy --with-registry-auth \
      --resolve-image "$resolve" -c "$(basename "$1")" "$stack" 2>&1); then
    printf '%s\n' "$out" | tail -n 15
    echo "@error stack-deploy"
    return 1
  fi
  deadline=$(($(date +%s) + timeout))
  while :; do
    state=$(field '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}')
    if report_down && [ "$state" = updating ]; then
      # Swarm's updater waits without end for a task on a node that is gone: start the update
      # again (a forced one), on the nodes left.
      if docker service update --detach --force "$svc" >/dev/null 2>&1; then
        echo "@warning node${down_seen% } went down during the update: Swarm moved its" \
          "tasks to the nodes left and the update started again there"
      fi
      continue
    fi
    fresh=
    [ "$(field '{{if .UpdateStatus}}{{.UpdateStatus.StartedAt}}{{end}}')" != "$started_before" ] && fresh=1
    case $state in
      updating | rollback_started) ;;
      rollback_completed | paused | rollback_paused)
        if [ -n "$fresh" ]; then
          message=$(field '{{.UpdateStatus.Message}}')
          if [ "$state" = rollback_completed ]; then
            echo "@error rolled-back $message"
            return 3
          fi
          echo "@error paused $state $message"
          return 4
        fi
        tasks_ok && return 0 ;;
      *) tasks_ok && return 0 ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "@error timeout $timeout ${state:-no-update}"
      docker service ps --no-trunc --filter desired-state=running \
        --format '@task {{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}' "$svc" 2>/dev/null
      return 5
    fi
    sleep 0.5
  done
}

# wait_tasks COUNT: until COUNT tasks run the current spec; fails after TIMEOUT seconds.
wait_tasks() {
  until_s=$(($(date +%s) + timeout))
  until tasks_ok "$1"; do
    [ "$(date +%s)" -lt "$until_s" ] || return 1
    sleep 0.5
  done
}

# crowded: prints "FULL EMPTY GAP" (two hostnames, how many tasks more FULL runs) when a node
# that may run web tasks (ready, active, labelled APP_LABEL=true) runs two or more of them more
# than another such node; fails if not.
crowded() {
  # shellcheck disable=SC2046  # node ids split on purpose
  nodes=$(docker node inspect $(docker node ls -q) --format "{{.ID}} {{.Description.Hostname}} {{.Status.State}} {{.Spec.Availability}} {{index .Spec.Labels \"$app_label\"}}" 2>/dev/null |
    awk '$3 == "ready" && $4 == "active" && $5 == "true" {print $1, $2}')
  ids=$(task_ids)
  # shellcheck disable=SC2086  # task ids split on purpose
  placed=$( [ -z "$ids" ] || docker inspect --format '{{.NodeID}}' $ids 2>/dev/null)
  printf '%s\n' "$nodes" | while read -r id host; do
    [ -n "$id" ] && echo "$(printf '%s\n' "$placed" | grep -cxF "$id") $host"
  done | sort -n | awk 'NR == 1 {low = $1; empty = $2} {high = $1; full = $2}
    END {if (NR > 1 && high - low >= 2) {print full, empty, high - low; exit 0} exit 1}'
}

# spread: Swarm never moves a running task, and start-first updates can leave every web task
# on one node, which losing that node would take down. While the tasks crowd a node, scale the
# service up by one (the scheduler puts the task on the node with the fewest), and once it
# runs back down (Swarm removes a task from the node with the most; its entrypoint's drain
# keeps it serving until Traefik's next poll). At most REPLICAS moves, and none more once a
# move changed nothing; either way the outcome is a warning.
spread() {
  pair=$(crowded) || return 0
  full=${pair%% *} rest=${pair#* }
  empty=${rest%% *} gap=${rest#* } moves=0
  while [ "$moves" -lt "$replicas" ]; do
    docker service scale --detach "$svc=$((replicas + 1))" >/dev/null 2>&1 &&
      wait_tasks $((replicas + 1))
    started=$?
    docker service scale --detach "$svc=$replicas" >/dev/null 2>&1
    if [ "$started" -ne 0 ] || ! wait_tasks "$replicas"; then
      echo "@warning the web tasks crowd $full and none could be moved to $empty within" \
        "${timeout}s: losing $full would stop the service (see docker service ps $svc)"
      return 0
    fi
    moves=$((moves + 1))
    if ! pair=$(crowded); then
      echo "@warning the web tasks crowded $full (Swarm does not rebalance): $moves moved to" \
        "other nodes, so that losing one node leaves tasks serving"
      return 0
    fi
    [ "${pair##* }" -lt "$gap" ] || break
    gap=${pair##* }
  done
  echo "@warning the web tasks still crowd ${pair%% *} after $moves moves (Swarm placed the" \
    "new tasks beside them): losing it would stop the service (see docker service ps $svc)"
}

# prune: the stack's secrets and configs named in no release's stack files on this host.
prune() {
  for kind in secret config; do
    for name in $(docker "$kind" ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Name}}' 2>/dev/null); do
      if ! cat "$app_dir"/releases/*/*.yml 2>/dev/null | grep -qF "\"$name\""; then
        docker "$kind" rm "$name" >/dev/null 2>&1 && echo "@pruned $kind $name"
      fi
    done
  done
}

t0=$(now)
converge "$file"
code=$?
if [ "$code" -eq 0 ]; then
  echo "@converged $(since "$t0")"
  spread
  sleep "$settle"
  prune
  exit 0
fi
if [ -n "$previous" ]; then
  echo "@restoring $previous"
  if converge "$previous"; then
    echo "@restored $(since "$t0")"
    spread
  else
    echo "@restore-failed"
  fi
fi
exit "$code"
