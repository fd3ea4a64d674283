# Joins this host to a swarm. The join token arrives on stdin: it is never an argument of an
# SSH command, a file or output. First checks that MANAGER:2377 (the manager's advertise
# address) answers from here, so an unreachable address is named as such rather than after
# Docker's own timeout. Prints this node's id once joined.
# Usage: join.sh MANAGER ADVERTISE < TOKEN
# shellcheck shell=sh
set -u
manager=$1 advertise=$2
read -r token
reachable=unknown
if command -v bash >/dev/null 2>&1; then
  # shellcheck disable=SC2016  # $1 expands in the inner bash
  if timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/2377"' bash "$manager" 2>/dev/null; then
    reachable=yes
  else
    reachable=no
  fi
elif command -v nc >/dev/null 2>&1; then
  if nc -z -w 5 "$manager" 2377 2>/dev/null; then reachable=yes; else reachable=no; fi
fi
if [ "$reachable" = no ]; then
  echo "@error unreachable $manager:2377"
  exit 2
fi
if ! out=$(docker swarm join --token "$token" --advertise-addr "$advertise" "$manager:2377" 2>&1); then
  printf '%s\n' "$out" | tail -n 3
  case $out in
    *"valid join token"*) echo "@error token" ;;
    *"already part of a swarm"*) echo "@error member" ;;
    *) echo "@error join" ;;
  esac
  exit 1
fi
echo "@joined $(docker info --format '{{.Swarm.NodeID}}')"
