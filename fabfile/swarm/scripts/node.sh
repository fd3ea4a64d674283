# What `inv setup` needs to know about one host before it touches the swarm: the Docker
# Engine's version, the host's swarm membership (state, whether it is a manager, its node id,
# the cluster's id, the address it advertises, the managers it knows and, on a manager, the
# swarm's node ids), and what listens on
# each PORT (Traefik's 80 and 443 on the host it is pinned to).
# Usage: node.sh [PORT...]
# shellcheck shell=sh
set -u
b64() { base64 -w0 2>/dev/null || base64 | tr -d '\n'; }
echo "@node 1"
if ! command -v docker >/dev/null 2>&1; then
  echo "docker missing"
elif out=$(docker version --format '{{.Server.Version}}' 2>&1); then
  echo "docker $out"
  docker info --format 'swarm {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{if .Swarm.NodeID}}{{.Swarm.NodeID}}{{else}}-{{end}} {{if .Swarm.Cluster}}{{.Swarm.Cluster.ID}}{{else}}-{{end}} {{if .Swarm.NodeAddr}}{{.Swarm.NodeAddr}}{{else}}-{{end}}' 2>/dev/null
  echo "managers $(docker info --format '{{range .Swarm.RemoteManagers}}{{.Addr}} {{end}}' 2>/dev/null)"
  if [ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ]; then
    echo "nodes $(docker node ls -q 2>/dev/null | tr '\n' ' ')"
  fi
  error=$(docker info --format '{{.Swarm.Error}}' 2>/dev/null)
  [ -n "$error" ] && echo "swarm_error $(printf '%s' "$error" | b64)"
else
  echo "docker_error $(printf '%s' "$out" | tail -n 3 | b64)"
fi
for port in "$@"; do
  holders=$(ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\).*/\1/p' | tr -d '"' | sort -u | tr '\n' ',')
  if [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
    echo "listen $port ${holders:-unknown}"
  fi
done
echo "@end"
