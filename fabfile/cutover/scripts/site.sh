# Puts the site behind the maintenance page and back (the page is a plain `docker run`
# container; see fabfile/cutover/steps.py), with the rollout's functions (deploy's lib.sh).
# Usage: site.sh ACTION ARG...
#   maint-up NAME TIMEOUT SETTLE DOCKER_RUN_ARG...   start the page, wait healthy + SETTLE
#   drain-web PROJECT SERVICE FILE SETTLE TIMEOUT    drain running web containers, wait
#                                                    unhealthy + SETTLE
#   undrain-web PROJECT SERVICE FILE SETTLE TIMEOUT  undo it: wait healthy + SETTLE
#   stop-web PROJECT SERVICE FILE SETTLE GRACE TIMEOUT
#                                                    drain the web containers, wait
#                                                    unhealthy + SETTLE, stop, remove them
#   maint-down NAME SETTLE TIMEOUT                   drain the page, wait SETTLE, remove it
# A page already up and healthy (left by a run that died) is kept: removing it would leave
# the site without an answer until the new one is up.
# shellcheck disable=SC2086,SC2046  # lists of container ids split on purpose
set -u
action=$1
shift
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
    if ! out=$("$@" 2>&1); then
      printf '%s\n' "$out" | tail -n 5
      echo "@error maint-start"
      exit 1
    fi
    id=$(docker inspect -f '{{.Id}}' "$name")
    if ! wait_until in "$limit" "$id"; then
      docker logs --tail 10 "$id" 2>&1 | sed 's/^/@log /'
      echo "@error maint-unhealthy $(states "$id" | cut -d' ' -f2-)"
      docker rm -f "$id" >/dev/null 2>&1
      exit 1
    fi
    sleep "$settle"
    echo "@maintenance $id" ;;
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
  *)
    echo "@error unknown-action $action"
    exit 2 ;;
esac
