# Initialises a swarm on this host, advertising ADVERTISE, unless it is in one already. Docker
# prints the join tokens on success: that output is dropped, never shown.
# Usage: init.sh ADVERTISE
# shellcheck shell=sh
set -u
advertise=$1
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = active ]; then
  echo "@active"
  exit 0
fi
if ! err=$(docker swarm init --advertise-addr "$advertise" 2>&1 >/dev/null); then
  printf '%s\n' "$err" | tail -n 3
  echo "@error init"
  exit 1
fi
echo "@created swarm (manager $(docker info --format '{{.Swarm.NodeID}}') at $advertise)"
