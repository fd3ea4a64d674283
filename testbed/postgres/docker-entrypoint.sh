#!/bin/sh
# The essentials of the official postgres image's entrypoint:
# - `postgres [ARGS]` (the default) or `-flag ...`: on first start (empty $PGDATA) initdb with
#   POSTGRES_USER (default postgres) / POSTGRES_PASSWORD, trust for local socket connections and
#   scram-sha-256 for TCP from anywhere, listen on '*', create POSTGRES_DB (default: the user),
#   run /docker-entrypoint-initdb.d/*.sh|*.sql; then exec postgres as the postgres user.
# - any other command (pg_dump, pg_restore, psql, sh, ...) is exec'd as given.
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA" || true
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres {} +
  mkdir -p /var/run/postgresql
  chown postgres:postgres /var/run/postgresql
  chmod 3777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    echo "Error: Database is uninitialized and superuser password is not specified." >&2
    echo "       Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)." >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS holds several arguments, as in the official image
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
    --auth-host="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" ${POSTGRES_INITDB_ARGS:-}
  rm -f "$pwfile"
  printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"

  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
  export PGUSER="$user"
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -X -q --dbname postgres --set db="$db" <<'SQL'
CREATE DATABASE :"db";
SQL
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh)
        echo "running $f"
        # shellcheck disable=SC1090  # the image's user supplies the init scripts
        . "$f" ;;
      *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 -X -q --dbname "$db" -f "$f" ;;
      *.sql.gz) echo "running $f"; gunzip -c "$f" | psql -v ON_ERROR_STOP=1 -X -q --dbname "$db" ;;
      *) ;;
    esac
  done
  unset PGUSER
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
