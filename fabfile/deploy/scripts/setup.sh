# Prepares a host for deploys, idempotently: the app's directory tree, acme.json with mode
# 600 (Traefik refuses any other), and the external Docker network the stack joins. Prints
# one line per thing it created; Docker and Compose were checked before it runs.
# Usage: setup.sh APP_DIR NETWORK
set -u
app_dir=$1 network=$2
for dir in "$app_dir" "$app_dir/releases" "$app_dir/traefik" "$app_dir/traefik/dynamic"; do
  if [ ! -d "$dir" ]; then
    if ! err=$(mkdir -p "$dir" 2>&1); then
      echo "@error mkdir $dir $err"
      exit 1
    fi
    echo "@created $dir"
  fi
done
if [ ! -e "$app_dir/acme.json" ]; then
  (umask 077 && : > "$app_dir/acme.json") || { echo "@error acme $app_dir/acme.json"; exit 1; }
  echo "@created $app_dir/acme.json"
fi
if [ "$(stat -c %a "$app_dir/acme.json")" != 600 ]; then
  chmod 600 "$app_dir/acme.json" && echo "@fixed $app_dir/acme.json mode 600"
fi
if [ ! -e "$app_dir/audit.log" ]; then
  : > "$app_dir/audit.log" && echo "@created $app_dir/audit.log"
fi
if ! docker network inspect "$network" >/dev/null 2>&1; then
  if ! err=$(docker network create "$network" 2>&1); then
    echo "@error network $network $err"
    exit 1
  fi
  echo "@created network $network"
fi
echo "@ready"
