# Puts the site behind the maintenance page and back (the page is a plain `docker run`
# container; see fabfile/cutover/steps.py), with the rollout's functions (deploy's lib.sh).
# Usage: site.sh ACTION ARG...
#   maint-up NAME TIMEOUT SETTLE DOCKER_RUN_ARG...   start the page, wait healthy + SETTLE
#   maint-on NAME SPEC TIMEOUT SETTLE UNHEALTHY_TIMEOUT DOCKER_RUN_ARG...
#                                                    an operator's page: keep the one up when
#                                                    it is healthy and its label
#                                                    shipyard.maintenance.spec is SPEC; else
#                                                    start a new one beside it (the old one
#                                                    renamed), wait healthy + SETTLE, then
#                                                    drain and remove the old one
#   drain-web PROJECT SERVICE FILE SETTLE TIMEOUT    drain running web containers, wait
#                                                    unhealthy + SETTLE
#   undrain-web PROJECT SERVICE FILE SETTLE TIMEOUT  undo it: wait healthy + SETTLE
#   stop-web PROJECT SERVICE FILE SETTLE GRACE TIMEOUT
#                                                    drain the web containers, wait
#                                                    unhealthy + SETTLE, stop, remove them
#   maint-down NAME SETTLE TIMEOUT                   drain the page, wait SETTLE, remove it
#   maint-remove NAME                                remove the page at once: only once web
#                                                    containers have been healthy for SETTLE,
#                                                    when their routers outrank its (priority 1)
#                                                    and it gets no request (an operator's
#                                                    page, which outranks them, is kept)
# A page already up and healthy (left by a run that died) is kept: removing it would leave
# the site without an answer until the new one is up.
# shellcheck disable=SC2086,SC2046  # lists of container ids split on purpose
set -u
action=$1
shift

# page_start NAME LIMIT SETTLE DOCKER_RUN_ARG...: run the page, wait until it is healthy,
# then SETTLE seconds (the proxy routes to it by then). On failure it is removed.
page_start() {
  _name=$1 _limit=$2 _settle=$3
  shift 3
  if ! _out=$("$@" 2>&1); then
    printf '%s\n' "$_out" | tail -n 5
    echo "@error maint-start"
    return 1
  fi
  _id=$(docker inspect -f '{{.Id}}' "$_name")
  if ! wait_until in "$_limit" "$_id"; then
    docker logs --tail 10 "$_id" 2>&1 | sed 's/^/@log /'
    echo "@error maint-unhealthy $(states "$_id" | cut -d' ' -f2-)"
    docker rm -f "$_id" >/dev/null 2>&1
    return 1
  fi
  sleep "$_settle"
  echo "@maintenance $_id"
}

case $action in
  maint-up)
    name=$1 limit=$2 settle=$3
    shift 3
    id=$(docker ps -q --no-trunc --filter "name=^$name\$" --filter health=healthy)
    if [ -n "$id" ]; then
      echo "@maintenance $id"
      exit 0
    fi
    docker rm -f "$name" >/dev/null 2>&1
    page_start "$name" "$limit" "$settle" "$@" || exit 1 ;;
  maint-on)
    name=$1 spec=$2 limit=$3 settle=$4 unhealthy=$5
    shift 5
    old=$(docker ps -aq --no-trunc --filter "name=^$name\$")
    if [ -n "$old" ]; then
      if [ -n "$(docker ps -q --filter "id=$old" --filter health=healthy \
          --filter "label=shipyard.maintenance.spec=$spec")" ]; then
        echo "@kept $old"
        exit 0
      fi
      docker rename "$old" "$name-replaced-$(date +%s)" || { echo "@error maint-rename"; exit 1; }
    fi
    if ! page_start "$name" "$limit" "$settle" "$@"; then
      [ -n "$old" ] && docker rename "$old" "$name"
      exit 1
    fi
    if [ -n "$old" ]; then
      retire /tmp/maintenance-drain "$settle" 10 "$unhealthy" "$old"
    fi ;;
  drain-web|undrain-web)
    project=$1 service=$2 file=$3 settle=$4 limit=$5
    ids=$(running $(service_ids "$project" "$service"))
    if [ "$action" = drain-web ]; then
      [ -n "$ids" ] || { echo "@error no-web"; exit 1; }
      if ! drain "$file" $ids || ! wait_until out "$limit" $ids; then
        undrain "$file" $ids
        echo "@error still-healthy"
        exit 1
      fi
      sleep "$settle"
      echo "@drained" $ids
    else
      [ -n "$ids" ] || { echo "@undrained"; exit 0; }
      undrain "$file" $ids
      if ! wait_until in "$limit" $ids; then
        echo "@error not-healthy $(states $ids | tr '\n' ' ')"
        exit 1
      fi
      sleep "$settle"
      echo "@undrained" $ids
    fi ;;
  stop-web)
    project=$1 service=$2 file=$3 settle=$4 grace=$5 limit=$6
    ids=$(service_ids "$project" "$service")
    retire "$file" "$settle" "$grace" "$limit" $ids
    echo "@stopped" $ids ;;
  maint-down)
    name=$1 settle=$2 limit=$3
    ids=$(docker ps -aq --no-trunc --filter "name=^$name\$")
    [ -n "$ids" ] || { echo "@removed"; exit 0; }
    retire /tmp/maintenance-drain "$settle" 10 "$limit" $ids ;;
  maint-remove)
    name=$1
    ids=$(docker ps -aq --no-trunc --filter "name=^$name\$" --filter label=shipyard.role=maintenance)
    [ -n "$ids" ] || { echo "@removed"; exit 0; }
    if [ -n "$(docker ps -aq --filter "id=$ids" --filter label=shipyard.maintenance=manual)" ]; then
      echo "@kept-manual $ids"
      exit 0
    fi
    docker rm -f $ids >/dev/null 2>&1 || { echo "@error maint-remove"; exit 1; }
    echo "@removed $ids" ;;
  *)
    echo "@error unknown-action $action"
    exit 2 ;;
esac
