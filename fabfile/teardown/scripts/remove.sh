# Takes the app off this host, under the deploy lock this run holds (TOKEN): stops its
# containers (the stop grace period lets requests in flight finish) and removes them, the
# maintenance page and one-off containers included; removes its networks (the edge
# network only when nothing else uses it) and releases (`releases/`, `current`, the
# Traefik files, `cache/`). Keeps acme.json, the backup cache, the database-backend marker
# and the app's volumes, unless PURGE=1. audit.log always stays: AUDIT_LINE is appended to
# it, then the lock is released. Prints one marker per thing removed or kept.
# Usage: remove.sh APP_DIR PROJECT NETWORK TOKEN GRACE PURGE AUDIT_LINE [CACHE_DIR]
# shellcheck disable=SC2086  # lists of ids split on purpose
set -u
app_dir=$1 project=$2 network=$3 token=$4 grace=$5 purge=$6 audit=$7 cache=${8:-}
lock="$app_dir/lock"
code=0
if ! lock_ours "$lock" "$token"; then
  echo "@error lock-lost"
  exit 1
fi

ids=$(docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$project")
if [ -n "$ids" ]; then
  running=$(docker ps -q --no-trunc --filter "label=com.docker.compose.project=$project")
  [ -z "$running" ] || docker stop -t "$grace" $running >/dev/null 2>&1
  if [ "$purge" = 1 ]; then set -- -v; else set --; fi
  if docker rm -f "$@" $ids >/dev/null; then
    echo "@removed containers $(echo $ids | wc -w)"
  else
    echo "@error containers"
    code=1
  fi
fi

for net in $(docker network ls -q --filter "label=com.docker.compose.project=$project") \
    "$network"; do
  docker network inspect "$net" >/dev/null 2>&1 || continue
  name=$(docker network inspect -f '{{.Name}}' "$net")
  users=$(docker network inspect -f '{{len .Containers}}' "$net")
  if [ "$users" != 0 ]; then
    echo "@kept network $name (other containers use it)"
  elif docker network rm "$net" >/dev/null; then
    echo "@removed network $name"
  else
    echo "@error network $name"
    code=1
  fi
done

for path in releases current .current.new traefik cache; do
  [ -e "$app_dir/$path" ] || [ -L "$app_dir/$path" ] || continue
  if rm -rf "${app_dir:?}/$path"; then echo "@removed $app_dir/$path"; else code=1; fi
done

kept="$app_dir/acme.json $app_dir/database-backend $cache"
if [ "$purge" = 1 ]; then
  for volume in $(docker volume ls -q --filter "label=com.docker.compose.project=$project"); do
    if docker volume rm "$volume" >/dev/null; then echo "@removed volume $volume"; else code=1; fi
  done
  for path in $kept; do
    [ -e "$path" ] || continue
    if rm -rf "$path"; then echo "@removed $path"; else code=1; fi
  done
else
  for volume in $(docker volume ls -q --filter "label=com.docker.compose.project=$project"); do
    echo "@kept volume $volume"
  done
  for path in $kept; do
    [ -e "$path" ] && echo "@kept $path"
  done
fi

printf '%s\n' "$audit" >> "$app_dir/audit.log" || code=1
lock_release "$lock" "$token" || code=1
echo "@done $code"
exit "$code"
