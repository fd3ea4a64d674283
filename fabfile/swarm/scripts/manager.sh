# Brings the control manager to the environment's configuration, idempotently, once every host
# is in the swarm: creates the overlay NETWORK the stack's services share (attachable, so
# one-off containers can join it), labels the nodes (`NODE_ID KEY=VALUE` pairs), then prepares
# the app's directory tree and acme.json with the Compose engine's setup script (SETUP_BODY).
# Prints what it created.
# Usage: manager.sh SETUP_BODY APP_DIR NETWORK [NODE_ID KEY=VALUE]...
# shellcheck shell=sh
set -u
setup_body=$1 app_dir=$2 network=$3
shift 3
driver=$(docker network inspect --format '{{.Driver}} {{.Scope}}' "$network" 2>/dev/null)
case $driver in
  "overlay swarm") ;;
  "")
    if ! out=$(docker network create --driver overlay --attachable "$network" 2>&1); then
      echo "@error network $out"
      exit 1
    fi
    echo "@created overlay network $network" ;;
  *)
    echo "@error network-kind $network $driver"
    exit 1 ;;
esac
while [ $# -ge 2 ]; do
  node=$1 label=$2
  shift 2
  if [ "$(docker node inspect --format "{{index .Spec.Labels \"${label%%=*}\"}}" "$node" 2>/dev/null)" != "${label#*=}" ]; then
    if ! out=$(docker node update --label-add "$label" "$node" 2>&1); then
      echo "@error label $node $label $out"
      exit 1
    fi
    echo "@created label $label on $(docker node inspect --format '{{.Description.Hostname}}' "$node")"
  fi
done
sh -c "$setup_body" setup "$app_dir" "$network"
