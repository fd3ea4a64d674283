# Runs where the PostgreSQL client tools are: in a `postgres:<server major>` container
# (`backup.client: docker`) or on the host itself (`client: host`); the host scripts start
# it through `client` (lib.sh). $1 is the mode:
#   facts CONN        -> "client <pg_dump --version>", "server <version_num> <db bytes>" or
#                        "dberror <message>"
#   dump CONN OUT     -> "server <version_num>" and "client <pg_dump --version>"; exit 13
#                        when pg_dump is older than the server; else a custom-format archive
#                        at OUT (seekable, uncompressed) and "count<TAB>table<TAB>n" lines
#                        taken in the dump's snapshot
#   plan CONN MODE    -> reads an archive on stdin (its table of contents is enough) and
#                        prints what restoring it into CONN would do: the `plan` lines below
#   restore CONN FILE JOBS MODE SCRATCH ADMIN [DONE]
#                     -> waits for a "go" line on stdin (the host checks the checksum
#                        meanwhile); creates the database SCRATCH through ADMIN when set;
#                        plans (as above) and refuses with exit 62 when privileges forbid an
#                        exact restore, 63 when MODE is `empty` and CONN holds objects; drops
#                        everything not in the archive in one transaction (exit 61 when that
#                        fails: nothing changed); restores FILE with pg_restore -j JOBS (exit
#                        60 when it fails); prints row counts when SCRATCH is set and drops it
#                        again; writes "exit N" to DONE as soon as pg_restore is over (and
#                        then its report to DONE.out instead of stdout).
# An exact restore leaves the database holding what the archive holds, nothing else, in
# every schema the app uses: the archive's schemas, the schemas the user owns, the schemas
# holding objects it owns. Schemas in the archive that exist are kept (and emptied); others
# the user owns are dropped; extensions in the archive that exist are kept, those the user
# owns and the archive lacks are dropped. MODE `exact` does so whatever CONN holds, `empty`
# only when there is nothing to drop (a --target-url without --replace, a scratch database).
# Plan lines (tab-separated, after "plan"):
#   drop KIND NAME             an object the restore drops first
#   foreign KIND NAME OWNER    one it must drop but may not (owned by OWNER): refused
#   need create-schema NAME    the archive's schema NAME must be created: needs CREATE on
#                              the database
#   need create-in NAME        the archive puts objects in the existing schema NAME: needs
#                              CREATE and USAGE on it
#   need extension NAME WHY    the archive's extension NAME must be created and cannot be
#                              (WHY: unavailable, or privilege)
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
# The plan of an exact restore (see above), as "ACTION<TAB>KIND<TAB>NAME<TAB>DETAIL" lines;
# a drop's DETAIL is its statement. psql variables: `schemas` (the archive's, a line each),
# `used` (the schemas its objects are in), `extensions` (its extensions).
plan_sql=$(cat <<'SQL'
WITH
args AS (
  SELECT string_to_array(:'schemas', E'\n') || '{public}'::text[] AS schemas,
         string_to_array(:'used', E'\n') AS used,
         string_to_array(:'extensions', E'\n') AS extensions),
me AS (
  SELECT r.rolsuper AS super, has_database_privilege(current_database(), 'CREATE') AS create_db
    FROM pg_roles r WHERE r.rolname = current_user),
part AS (  -- extension members, and parts of other objects (dropped with them)
  SELECT d.classid, d.objid FROM pg_depend d
   WHERE d.deptype = 'e' OR (d.deptype = 'i' AND (d.refclassid, d.refobjid) <> (d.classid, d.objid))),
nsp AS (
  SELECT n.oid, n.nspname AS name, pg_has_role(n.nspowner, 'MEMBER') OR me.super AS mine,
         n.nspname = ANY (args.schemas) AS in_backup
    FROM pg_namespace n, me, args
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'
     AND (n.oid NOT IN (SELECT objid FROM part WHERE classid = 'pg_namespace'::regclass))),
obj AS (
  SELECT o.*, pg_has_role(o.owner, 'MEMBER') AS owned FROM (
    SELECT 'pg_class'::regclass AS classid, c.oid AS objid, c.relnamespace AS nsp,
           c.relowner AS owner, CASE WHEN c.relkind IN ('v', 'm') THEN 1
                                     WHEN c.relkind = 'S' THEN 3 ELSE 2 END AS rank
      FROM pg_class c WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    UNION ALL
    SELECT 'pg_proc'::regclass, p.oid, p.pronamespace, p.proowner, 4 FROM pg_proc p
    UNION ALL
    SELECT 'pg_operator'::regclass, o.oid, o.oprnamespace, o.oprowner, 4 FROM pg_operator o
    UNION ALL
    SELECT 'pg_opfamily'::regclass, o.oid, o.opfnamespace, o.opfowner, 4 FROM pg_opfamily o
    UNION ALL
    SELECT 'pg_type'::regclass, t.oid, t.typnamespace, t.typowner, 5 FROM pg_type t
     WHERE t.typtype IN ('d', 'e', 'r')
        OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
    UNION ALL
    SELECT 'pg_collation'::regclass, o.oid, o.collnamespace, o.collowner, 6
      FROM pg_collation o
    UNION ALL
    SELECT 'pg_conversion'::regclass, o.oid, o.connamespace, o.conowner, 6
      FROM pg_conversion o
    UNION ALL
    SELECT 'pg_ts_config'::regclass, o.oid, o.cfgnamespace, o.cfgowner, 6 FROM pg_ts_config o
    UNION ALL
    SELECT 'pg_ts_dict'::regclass, o.oid, o.dictnamespace, o.dictowner, 6 FROM pg_ts_dict o
  ) o
  WHERE (o.classid, o.objid) NOT IN (SELECT classid, objid FROM part)),
app AS (  -- the schemas the app uses
  SELECT n.* FROM nsp n
   WHERE n.in_backup OR n.mine OR EXISTS (SELECT 1 FROM obj WHERE obj.nsp = n.oid AND obj.owned)),
gone AS (SELECT * FROM app WHERE NOT in_backup AND mine),
ext AS (
  SELECT e.extname AS name, e.extnamespace AS nsp, pg_has_role(e.extowner, 'MEMBER') OR me.super AS mine,
         e.extname = ANY (args.extensions) AS in_backup
    FROM pg_extension e, me, args
   WHERE e.oid >= 16384),  -- not those of initdb (plpgsql), which pg_dump leaves out
kept_ext AS (SELECT * FROM ext WHERE in_backup AND nsp NOT IN (SELECT oid FROM gone)),
avail AS (SELECT name, bool_or(trusted) AS trusted FROM pg_available_extension_versions GROUP BY name)
SELECT 'drop', 'schema', quote_ident(name), format('DROP SCHEMA IF EXISTS %I CASCADE', name), 0
  FROM gone
UNION ALL
SELECT 'drop', 'extension', quote_ident(name), format('DROP EXTENSION IF EXISTS %I CASCADE', name), 0
  FROM ext WHERE NOT in_backup AND mine
UNION ALL
SELECT CASE WHEN o.owned OR n.mine THEN 'drop' ELSE 'foreign' END, i.type, i.identity,
       CASE WHEN o.owned OR n.mine
            THEN format('DROP %s IF EXISTS %s CASCADE', upper(i.type), i.identity)
            ELSE pg_get_userbyid(o.owner)::text END, o.rank
  FROM obj o JOIN app n ON n.oid = o.nsp
 CROSS JOIN LATERAL pg_identify_object(o.classid, o.objid, 0) i
 WHERE o.nsp NOT IN (SELECT oid FROM gone)
UNION ALL
SELECT 'drop', 'large object', l.oid::text, format('SELECT lo_unlink(%s)', l.oid), 7
  FROM pg_largeobject_metadata l WHERE pg_has_role(l.lomowner, 'MEMBER')
UNION ALL
SELECT 'keep-schema', name, '', '', 8 FROM app WHERE in_backup
UNION ALL
SELECT 'keep-extension', name, '', '', 8 FROM kept_ext
UNION ALL
SELECT 'need', 'create-schema', s, '', 9 FROM args, me, unnest(args.schemas) s
 WHERE s NOT IN (SELECT name FROM nsp) AND NOT (me.create_db OR me.super)
UNION ALL
SELECT 'need', 'create-in', n.name, '', 9 FROM app n, args
 WHERE n.in_backup AND n.name = ANY (args.used)
   AND NOT (has_schema_privilege(n.oid, 'CREATE') AND has_schema_privilege(n.oid, 'USAGE'))
UNION ALL
SELECT 'need', 'extension', x, CASE WHEN a.name IS NULL THEN 'unavailable' ELSE 'privilege' END, 9
  FROM args CROSS JOIN unnest(args.extensions) x LEFT JOIN avail a ON a.name = x, me
 WHERE x NOT IN (SELECT name FROM kept_ext)
   AND (a.name IS NULL OR NOT (me.super OR (a.trusted AND me.create_db)))
ORDER BY 5, 1, 2, 3
SQL
)
# What an archive's table of contents (pg_restore -l) says: "schema NAME" and "extension
# NAME" for what it creates, "used NAME" for each schema its objects are in. An entry is
# "ID; TABLEOID OID DESC SCHEMA NAME OWNER", and DESC may hold spaces: the known ones
# with spaces are matched first.
toc_summary=$(cat <<'AWK'
BEGIN {
  n = split("TABLE DATA|SEQUENCE SET|SEQUENCE OWNED BY|MATERIALIZED VIEW DATA|" \
            "MATERIALIZED VIEW|FK CONSTRAINT|CHECK CONSTRAINT|FOREIGN TABLE|" \
            "TEXT SEARCH CONFIGURATION|TEXT SEARCH DICTIONARY|TEXT SEARCH PARSER|" \
            "TEXT SEARCH TEMPLATE|OPERATOR CLASS|OPERATOR FAMILY|DEFAULT ACL|EVENT TRIGGER|" \
            "FOREIGN DATA WRAPPER|USER MAPPING|LARGE OBJECT|BLOB METADATA|SHELL TYPE|" \
            "PROCEDURAL LANGUAGE|ACCESS METHOD|INDEX ATTACH|TABLE ATTACH|ROW SECURITY|" \
            "PUBLICATION TABLE|PUBLICATION TABLES IN SCHEMA|SECURITY LABEL|DATABASE PROPERTIES",
            descs, "|")
}
/^;/ || !/^[0-9]+; / { next }
{
  line = $0
  sub(/^[0-9]+; [0-9]+ [0-9]+ /, "", line)
  if (line ~ /^(SCHEMA|EXTENSION) - /) {
    kind = (line ~ /^SCHEMA/) ? "schema" : "extension"
    name = line
    sub(/^[A-Z]+ - /, "", name)
    sub(/ [^ ]*$/, "", name)
    print kind "\t" name
    next
  }
  rest = ""
  for (i = 1; i <= n; i++) {
    if (index(line, descs[i] " ") == 1) { rest = substr(line, length(descs[i]) + 2); break }
  }
  if (rest == "") { rest = line; sub(/^[^ ]+ /, "", rest) }
  sub(/ .*/, "", rest)
  if (rest != "-") print "used\t" rest
}
AWK
)
# The archive's table of contents without the entries of what is kept (schemas and
# extensions that exist), for pg_restore -L. Reads the plan's keep lines first.
toc_filter=$(cat <<'AWK'
FNR == NR {
  split($0, f, "\t")
  if (f[1] == "keep-schema") keep["SCHEMA " f[2]] = 1
  if (f[1] == "keep-extension") keep["EXTENSION " f[2]] = 1
  next
}
{
  line = $0
  sub(/^[0-9]+; [0-9]+ [0-9]+ /, "", line)
  if (line ~ /^(SCHEMA|EXTENSION|COMMENT - SCHEMA|COMMENT - EXTENSION) /) {
    sub(/^COMMENT - /, "", line)
    sub(/ - /, " ", line)
    sub(/ [^ ]*$/, "", line)
    if (line in keep) next
  }
  print
}
AWK
)
mode=$1
conn=$2
counts() {
  psql -X -A -t -q -v ON_ERROR_STOP=1 -F "$tab" -d "$1" -c "$count_sql" | sed 's/^/count\t/'
}
# plan TOC WORK MODE: plan restoring the archive whose contents are in the file TOC into
# $conn; print the plan lines; leave WORK/drops.sql and WORK/list (for pg_restore -L).
# Returns 62 when privileges forbid an exact restore, 63 when MODE is `empty` and there
# is something to drop, 64 when the database could not be read.
plan() {
  awk "$toc_summary" "$1" >"$2/summary" || return 64
  printf '%s;\n' "$plan_sql" | psql -X -A -t -q -v ON_ERROR_STOP=1 -F "$tab" -d "$conn" \
    -v schemas="$(sed -n 's/^schema\t//p' "$2/summary")" \
    -v used="$(sed -n 's/^used\t//p' "$2/summary" | sort -u)" \
    -v extensions="$(sed -n 's/^extension\t//p' "$2/summary")" >"$2/plan" || return 64
  cut -f 1-4 "$2/plan" | grep -E '^(drop|foreign|need)' | while IFS="$tab" read -r what kind name detail; do
    case $what in
      drop) printf 'plan\tdrop\t%s\t%s\n' "$kind" "$name" ;;
      *) printf 'plan\t%s\t%s\t%s\t%s\n' "$what" "$kind" "$name" "$detail" ;;
    esac
  done
  awk -F "$tab" '$1 == "drop" {print $4 ";"}' "$2/plan" >"$2/drops.sql" || return 64
  awk "$toc_filter" "$2/plan" "$1" >"$2/list" || return 64
  if grep -qE '^(foreign|need)' "$2/plan"; then return 62; fi
  if [ "$3" = empty ] && [ -s "$2/drops.sql" ]; then return 63; fi
  return 0
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
plan)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  pg_restore -l >"$tmp/toc" || exit 64
  status=0
  plan "$tmp/toc" "$tmp" "$3" || status=$?
  exit "$status"
  ;;
restore)
  file=$3 jobs=$4 how=$5 scratch=$6 admin=$7 done=${8:-}
  IFS= read -r go || go=
  [ "$go" = go ] || exit 0
  # With DONE, the report goes to a file beside it, whole when DONE is written: Docker may
  # not have passed on the container's stdout yet when the caller reads it.
  if [ -n "$done" ]; then exec >"$done.out"; fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if [ -n "$scratch" ]; then
    psql -X -q -v ON_ERROR_STOP=1 -d "$admin" -v db="$scratch" <<'SQL'
CREATE DATABASE :"db";
SQL
    # shellcheck disable=SC2317  # the EXIT trap below runs it
    drop() {
      psql -X -q -d "$admin" -v db="$scratch" <<'SQL' >/dev/null 2>&1 || true
DROP DATABASE IF EXISTS :"db";
SQL
      rm -rf "$tmp"
    }
    trap drop EXIT
  fi
  report() {
    if [ -n "$done" ]; then echo "exit $1" >"$done" || true; fi
    exit "$1"
  }
  pg_restore -l "$file" >"$tmp/toc" || report 64
  status=0
  plan "$tmp/toc" "$tmp" "$how" || status=$?
  [ "$status" -eq 0 ] || report "$status"
  if [ -s "$tmp/drops.sql" ]; then
    PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" \
      psql -X -q -1 -v ON_ERROR_STOP=1 -d "$conn" -f "$tmp/drops.sql" >/dev/null || report 61
    echo "dropped $(grep -c . "$tmp/drops.sql")"
  fi
  # -j already builds indexes side by side: workers inside each build would only contend.
  PGOPTIONS="${PGOPTIONS:-} -c max_parallel_maintenance_workers=0 -c synchronous_commit=off" \
    pg_restore -j "$jobs" --no-owner --no-acl --exit-on-error -L "$tmp/list" -d "$conn" \
    "$file" || status=60
  if [ -n "$scratch" ]; then counts "$conn"; fi
  # the caller may go on now, without waiting for the container to be torn down
  report "$status"
  ;;
*)
  echo "unknown mode $mode" >&2
  exit 2
  ;;
esac
