# The swarm as the control manager sees it, in one round trip after the host's own facts
# (`fabfile/deploy/scripts/facts.sh`): this engine's swarm state, the nodes, the stack's
# services with their update status, their tasks, and the stack's secrets and configs.
# Free text (update messages, task errors, labels) is base64 so it cannot break the format.
# Usage: facts.sh STACK
# shellcheck shell=sh
set -u
stack=$1
b64() { base64 -w0 2>/dev/null || base64 | tr -d '\n'; }

echo "@swarm 1"
info=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}} {{if .Swarm.Cluster}}{{.Swarm.Cluster.ID}}{{end}}' 2>/dev/null)
echo "swarm ${info:-unknown}"
if [ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" != true ]; then
  echo "@swarm-end"
  exit 0
fi
# shellcheck disable=SC2046  # node ids split on purpose
docker node inspect $(docker node ls -q) --format 'node {{.ID}} {{.Spec.Role}} {{.Status.State}} {{.Spec.Availability}} {{.Status.Addr}} {{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{else}}-{{end}} {{.Description.Hostname}} {{json .Spec.Labels}}' 2>/dev/null
services=$(docker service ls -q --filter "label=com.docker.stack.namespace=$stack" 2>/dev/null)
for id in $services; do
  docker service inspect "$id" --format 'service {{.ID}} {{.Spec.Name}} {{.Spec.TaskTemplate.ContainerSpec.Image}} {{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}-{{end}} {{if .UpdateStatus}}{{.UpdateStatus.State}}{{else}}none{{end}}' 2>/dev/null
  message=$(docker service inspect "$id" --format '{{if .UpdateStatus}}{{.UpdateStatus.Message}}{{end}}' 2>/dev/null)
  [ -n "$message" ] && echo "update_message $id $(printf '%s' "$message" | b64)"
  tasks=$(docker service ps -q --no-trunc "$id" 2>/dev/null)
  if [ -n "$tasks" ]; then
    # shellcheck disable=SC2086  # task ids split on purpose
    docker inspect --format 'task {{.ID}} {{.ServiceID}} {{.Slot}} {{if .NodeID}}{{.NodeID}}{{else}}-{{end}} {{.DesiredState}} {{.Status.State}} {{.Spec.ContainerSpec.Image}} {{printf "%s" .Status.Err}}' $tasks 2>/dev/null | while read -r kind tid sid slot node desired state image err; do
      echo "$kind $tid $sid $slot $node $desired $state $image $(printf '%s' "$err" | b64)"
    done
  fi
done
docker secret ls --filter "label=com.docker.stack.namespace=$stack" --format 'secret {{.Name}}' 2>/dev/null
docker config ls --filter "label=com.docker.stack.namespace=$stack" --format 'config {{.Name}}' 2>/dev/null
echo "@swarm-end"
