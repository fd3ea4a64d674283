# Runs where the PostgreSQL client tools are: in a `postgres:<server major>` container
# (`backup.client: docker`) or on the host itself (`client: host`); the host scripts start
# it through `client` (lib.sh). $1 is the mode:
#   facts CONN                 -> "client <pg_dump --version>", "server <version_num> <db bytes>"
#                                 or "dberror <message>"
#   dump CONN OUT              -> "server <version_num>" and "client <pg_dump --version>";
#                                 exit 13 when pg_dump is older than the server; else a
#                                 custom-format archive at OUT (seekable, uncompressed) and
#                                 "count<TAB>table<TAB>n" lines taken in the dump's snapshot
#   restore CONN FILE JOBS CLEAN SCRATCH ADMIN [DONE]
#                              -> waits for a "go" line on stdin (the host checks the
#                                 checksum meanwhile), optionally creates database SCRATCH
#                                 through ADMIN, runs pg_restore -j JOBS, prints row counts
#                                 when SCRATCH is set and drops it again; writes "exit N"
#                                 to DONE as soon as pg_restore is over.
# Usage: client.sh MODE CONN ARG...
set -eu
tab=$(printf '\t')
# Row counts of every ordinary table (extension members left out: pg_dump skips them), as
# `schema.table<TAB>count` lines. Runs in the dump's snapshot in `dump` mode.
count_sql=$(cat <<'SQL'
SELECT format('%I.%I', n.nspname, c.relname),
       (xpath('/row/n/text()', query_to_xml(
           format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname),
           false, true, '')))[1]::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname !~ '^pg_(toast|temp)'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                   AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 1
SQL
)
mode=$1
conn=$2
counts() {
  psql -X -A -t -q -v ON_ERROR_STOP=1 -F "$tab" -d "$1" -c "$count_sql" | sed 's/^/count\t/'
}
case $mode in
facts)
  echo "client $(pg_dump --version)"
  q="SELECT current_setting('server_version_num') || ' ' || pg_database_size(current_database())"
  if out=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$conn" -c "$q" 2>&1); then
    echo "server $out"
  else
    echo "dberror $(printf '%s' "$out" | tr '\n' ' ')"
  fi
  ;;
dump)
  out=$3
  tmp=$(mktemp -d)
  mkfifo "$tmp/in" "$tmp/out"
  psql -X -A -t -q -v ON_ERROR_STOP=1 -F "$tab" -d "$conn" <"$tmp/in" >"$tmp/out" &
  session=$!
  exec 3>"$tmp/in" 4<"$tmp/out"
  printf '%s\n' 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;' \
    "SELECT current_setting('server_version_num'), pg_export_snapshot();" >&3
  if ! IFS="$tab" read -r num snapshot <&4; then
    wait "$session" || true
    echo "could not open a session on the database" >&2
    exit 21
  fi
  version=$(pg_dump --version | awk '{print $3}')
  printf 'server %s\nclient pg_dump (PostgreSQL) %s\n' "$num" "$version"
  if [ "${version%%[!0-9]*}" -lt "$((num / 10000))" ]; then
    echo "pg_dump $version is older than the server (version $num)" >&2
    exec 3>&- 4<&-
    wait "$session" || true
    exit 13
  fi
  printf '%s;\n' "$count_sql" "SELECT 'end-of-counts'" >&3
  pg_dump --snapshot="$snapshot" -Fc -Z0 --no-sync -f "$out" -d "$conn"
  while IFS= read -r line <&4; do
    [ "$line" = end-of-counts ] && break
    printf 'count\t%s\n' "$line"
  done
  printf 'COMMIT;\n' >&3
  exec 3>&- 4<&-
  wait "$session"
  rm -rf "$tmp"
  ;;
restore)
  file=$3 jobs=$4 clean=$5 scratch=$6 admin=$7 done=${8:-}
  IFS= read -r go || go=
  [ "$go" = go ] || exit 0
  if [ -n "$scratch" ]; then
    psql -X -q -v ON_ERROR_STOP=1 -d "$admin" -v db="$scratch" <<'SQL'
CREATE DATABASE :"db";
SQL
    # shellcheck disable=SC2317  # the EXIT trap below runs it
    drop() {
      psql -X -q -d "$admin" -v db="$scratch" <<'SQL' >/dev/null 2>&1 || true
DROP DATABASE IF EXISTS :"db";
SQL
    }
    trap drop EXIT
  fi
  if [ "$clean" = 1 ]; then set -- --clean --if-exists; else set --; fi
  # -j already builds indexes side by side: workers inside each build would only contend.
  status=0
  PGOPTIONS="${PGOPTIONS:-} -c max_parallel_maintenance_workers=0 -c synchronous_commit=off" \
    pg_restore -j "$jobs" --no-owner --no-acl --exit-on-error "$@" -d "$conn" "$file" \
    || status=$?
  if [ -n "$scratch" ]; then counts "$conn"; fi
  # the caller may go on now, without waiting for the container to be torn down
  if [ -n "$done" ]; then echo "exit $status" >"$done" || true; fi
  exit "$status"
  ;;
*)
  echo "unknown mode $mode" >&2
  exit 2
  ;;
esac
