# Runs the migration command once, in a one-off container of the new release's web image,
# before any web container changes. Traefik must never route to it (label override). An
# interrupt lets it finish: a migration killed halfway is worse than one that completes.
# Usage: migrate.sh COMPOSE_FILE SERVICE COMMAND...
set -u
trap '' TERM INT HUP
compose=$1 service=$2
shift 2
docker compose -f "$compose" run --rm --no-deps -T -l traefik.enable=false "$service" "$@"
code=$?
echo "@migrate-exit $code"
exit "$code"
