# Runs the migration command once, in a one-off container of the new release's web image,
# before any web container changes. Traefik must never route to it (label override). An
# interrupt lets it finish: a migration killed halfway is worse than one that completes.
# First, the web healthcheck's program must exist in IMAGE (`health_probe`): a release whose
# containers could never turn healthy must not migrate the database.
# Usage: migrate.sh COMPOSE_FILE SERVICE PROBE_CACHE IMAGE PROBE_SPEC COMMAND...
set -u
trap '' TERM INT HUP
compose=$1 service=$2
health_probe "$3" "$4" "$5" || exit 4
shift 5
docker compose -f "$compose" run --rm --no-deps -T -l traefik.enable=false "$service" "$@"
code=$?
echo "@migrate-exit $code"
exit "$code"
