# Creates the app's own schema in the target database before a `--schema=existing` cutover:
# the migration command (`app.migrate_command`, e.g. `alembic upgrade head`) in a one-off
# container of the current release's web service, with DATABASE_URL pointed at the target.
# It runs on the host, the place the managed database admits. The URL holds the password: it
# arrives on stdin, lives only in this process's environment, and is handed to Compose by
# name (`-e DATABASE_URL`), never in argv or on disk.
# Usage: target_schema.sh COMPOSE_FILE SERVICE COMMAND...   < url
set -u
compose=$1 service=$2
shift 2
DATABASE_URL=
IFS= read -r DATABASE_URL || true
if [ -z "$DATABASE_URL" ]; then
  echo "@error no-url"
  exit 2
fi
export DATABASE_URL
out=$(docker compose -f "$compose" run --rm --no-deps -T -e DATABASE_URL \
  -l traefik.enable=false "$service" "$@" 2>&1)
code=$?
printf '%s\n' "$out" | tail -n 40
echo "@target-schema-exit $code"
exit "$code"
