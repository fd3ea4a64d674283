# Pulls the IMAGEs a release needs and the host lacks. With a registry (SERVER and USER set,
# the password on stdin) it logs in first, into a throwaway Docker config made for this pull
# alone: in memory where the host has /dev/shm, mode 700, removed when the script ends, on
# failure and interrupt too. No registry password stays on the host, and none is in argv.
# Each pulled image is recorded in APP_DIR/cache/pulled: `finish.sh` removes only images this
# app pulled (it can pull them again), never one built or loaded on the host by hand.
# Prints `@pulled IMAGE` per image, or `@error login|pull DETAIL`.
# Usage: pull.sh APP_DIR SERVER USER IMAGE...   (SERVER empty: public images, no login)
set -u
app_dir=$1 server=$2 user=$3
shift 3
config=
cleanup() { if [ -n "$config" ]; then rm -rf "$config"; fi; }
trap cleanup EXIT
trap 'exit 130' TERM INT HUP
if [ -n "$server" ]; then
  base=/dev/shm
  [ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
  config=$(mktemp -d "$base/shipyard-docker.XXXXXX") || { echo "@error login mktemp"; exit 3; }
  chmod 700 "$config"
  export DOCKER_CONFIG="$config"
  if ! out=$(docker login --username "$user" --password-stdin "$server" 2>&1); then
    echo "@error login $(printf '%s' "$out" | grep -v '^WARNING' | tail -n 1)"
    exit 3
  fi
fi
for image in "$@"; do
  if ! out=$(docker pull --quiet "$image" 2>&1); then
    echo "@error pull $image $(printf '%s' "$out" | tail -n 1)"
    exit 4
  fi
  mkdir -p "$app_dir/cache" && printf '%s\n' "$image" >> "$app_dir/cache/pulled"
  echo "@pulled $image"
done
