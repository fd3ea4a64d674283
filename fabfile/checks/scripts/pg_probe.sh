# Runs inside the PostgreSQL client image: the libpq service file arrives on stdin, psql
# reads it from disk, so no credential is ever in argv or the container's environment.
umask 077
cat > /tmp/pg_service.conf
sql="select s.ssl, coalesce(s.version, ''), current_setting('server_version')
  from pg_stat_ssl s where s.pid = pg_backend_pid()"
export PGSERVICEFILE=/tmp/pg_service.conf
exec psql -X -A -t -q -v ON_ERROR_STOP=1 -F '|' service=doctor -c "$sql"
