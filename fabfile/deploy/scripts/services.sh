# Brings the release's other services (database, edge proxy) to its configuration. Copies
# the release's Traefik files to their stable place under APP_DIR/traefik (its file provider
# watches the dynamic directory), then `up -d --wait` the services, which recreates only those
# whose Compose configuration changed. A changed static traefik.yml, which Compose cannot see,
# recreates a running traefik service. MODE `only` brings up the SERVICEs listed (maybe none:
# just the files); `all-but` every service of the release except those listed. An interrupt
# lets the phase finish.
# Usage: services.sh APP_DIR COMPOSE_FILE WAIT_TIMEOUT MODE [SERVICE...]
# shellcheck disable=SC2086,SC2046  # lists of container ids and services split on purpose
set -u
trap '' TERM INT HUP
app_dir=$1 compose=$2 timeout=$3 mode=$4
shift 4
release=$(dirname "$compose")
if [ "$mode" = all-but ]; then
  skip=$(printf '%s\n' "$@")
  set -- $(docker compose -f "$compose" config --services | grep -vxF "$skip")
fi
static_changed=
if [ -d "$release/traefik" ]; then
  if ! cmp -s "$release/traefik/traefik.yml" "$app_dir/traefik/traefik.yml"; then
    static_changed=1
  fi
  mkdir -p "$app_dir/traefik/dynamic" || exit 1
  if [ ! -e "$app_dir/acme.json" ]; then (umask 077 && : > "$app_dir/acme.json"); fi
  chmod 600 "$app_dir/acme.json"
  cp "$release/traefik/traefik.yml" "$app_dir/traefik/.traefik.yml.new" &&
    mv -f "$app_dir/traefik/.traefik.yml.new" "$app_dir/traefik/traefik.yml" || exit 1
  for file in "$release"/traefik/dynamic/*; do
    [ -f "$file" ] || continue
    name=$(basename "$file")
    cp "$file" "$app_dir/traefik/dynamic/.$name.new" &&
      mv -f "$app_dir/traefik/dynamic/.$name.new" "$app_dir/traefik/dynamic/$name" || exit 1
  done
  echo "@traefik-files"
fi
recreate=
if [ -n "$static_changed" ]; then
  for service in "$@"; do
    if [ "$service" = traefik ] && [ -n "$(docker compose -f "$compose" ps -q traefik 2>/dev/null)" ]; then
      recreate=traefik
    fi
  done
fi
if [ $# -gt 0 ]; then
  if ! out=$(docker compose -f "$compose" up -d --no-deps --wait --wait-timeout "$timeout" "$@" 2>&1); then
    printf '%s\n' "$out" | tail -n 15
    echo "@error services $*"
    exit 1
  fi
  echo "@up $*"
fi
if [ -n "$recreate" ]; then
  if ! out=$(docker compose -f "$compose" up -d --no-deps --force-recreate --wait \
      --wait-timeout "$timeout" traefik 2>&1); then
    printf '%s\n' "$out" | tail -n 15
    echo "@error services traefik"
    exit 1
  fi
  echo "@recreated traefik"
fi
echo "@services-ok"
