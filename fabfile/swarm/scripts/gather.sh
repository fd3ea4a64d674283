# One round trip for a Swarm deploy's facts: the host's own (FACTS_BODY: the lock, the
# releases, `current`), then the swarm's (SWARM_BODY), on the control manager.
# Usage: gather.sh SWARM_BODY FACTS_BODY STACK FACTS_ARG...
# shellcheck shell=sh
set -u
swarm_body=$1 facts_body=$2 stack=$3
shift 3
sh -c "$facts_body" facts "$@"
sh -c "$swarm_body" swarm "$stack"
