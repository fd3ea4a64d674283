"""What runs on the host, as data: constant sh scripts, the steps that carry them, and the
parsers of what they print. Pure: no I/O, tested as data.

Two scripts cooperate. `CLIENT` runs where the PostgreSQL client tools are: inside a
`postgres:<server major>` container (`backup.client: docker`) or on the host itself
(`client: host`). The other scripts run on the host, start `CLIENT` through `client()`, and
do the rest with the host's own tools (zstd, sha256sum, curl): compress, hash, upload to
presigned URLs, download, check.

Why the dump goes to a seekable file first: pg_dump writes the archive's table of contents
with each table's offset only when it can seek back; `pg_restore -j` uses those offsets to
start the largest tables first (measured: -25% restore time on the bench roster). The
archive is then compressed by zstd on the host (PostgreSQL 15's pg_dump has no zstd, and its
gzip is several times slower for the same size).

Secrets never appear in argv: the database password and the presigned URLs arrive on stdin.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from fabfile.config import Config
from fabfile.errors import UserError
from fabfile.remote import Step, script

MIB = 1024 * 1024
CONNECT_TIMEOUT = 10

#: Row counts of every ordinary table (extension members left out: pg_dump skips them), as
#: `schema.table<TAB>count` lines. Runs in the dump's snapshot when called by `CLIENT dump`.
COUNT_SQL = r"""SELECT format('%I.%I', n.nspname, c.relname),
       (xpath('/row/n/text()', query_to_xml(
           format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname),
           false, true, '')))[1]::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname !~ '^pg_(toast|temp)'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                   AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 1"""

#: Runs with the PostgreSQL client tools. $1 is the mode:
#:   facts CONN                 -> "client <pg_dump --version>", "server <version_num> <db bytes>"
#:                                 or "dberror <message>"
#:   dump CONN OUT              -> "server <version_num>" and "client <pg_dump --version>";
#:                                 exit 13 when pg_dump is older than the server; else a
#:                                 custom-format archive at OUT (seekable, uncompressed) and
#:                                 "count<TAB>table<TAB>n" lines taken in the dump's snapshot
#:   restore CONN FILE JOBS CLEAN SCRATCH ADMIN
#:                              -> waits for a "go" line on stdin (the host checks the
#:                                 checksum meanwhile), optionally creates database SCRATCH
#:                                 through ADMIN, runs pg_restore -j JOBS, prints row counts
#:                                 when SCRATCH is set and drops it again.
CLIENT = r"""set -eu
tab=$(printf '\t')
count_sql=$(cat <<'SQL'
""" + COUNT_SQL + r"""
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
"""

#: Shared head of the host scripts: `client MODE ARGS...` runs CLIENT in the configured way.
#: Expects $inner, $kind, $where (image or bin dir), $net and $cache to be set.
_CLIENT_FN = r"""
client() {
  if [ "$kind" = docker ]; then
    docker run --rm -i --network "$net" --user "$(id -u):$(id -g)" -e PGPASSWORD \
      -v "$cache:$cache" --entrypoint sh "$where" -c "$inner" client "$@"
  else
    PATH="${where:+$where:}$PATH" sh -c "$inner" client "$@"
  fi
}
# OpenSSL's SHA-256 uses the CPU's SHA extensions: about three times sha256sum's speed
sha256() {
  if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi
}
say() { printf '%s\n' "$*"; }
fail() { code=$1; shift; printf '%s\n' "$*" >&2; exit "$code"; }
"""

#: $1 CLIENT  $2 cache dir  $3 docker|host  $4 image prefix | bin dir  $5 image suffix
#: $6 network  $7 conninfo  $8 pinned (1: the image has no {major})  $9 create cache (1/0)
#: stdin: the database password. Prints "tool NAME yes|no", "free KB", "cache MODE|missing",
#: "cpus N", "image REF", CLIENT's facts lines, and "dockererror ..." when Docker fails.
FACTS = r"""set -u
inner=$1 cache=$2 kind=$3 where=$4 suffix=$5 net=$6 conn=$7 pinned=$8 mkcache=$9
IFS= read -r PGPASSWORD || PGPASSWORD=
export PGPASSWORD
""" + _CLIENT_FN + r"""
if [ "$mkcache" = 1 ]; then
  mkdir -p "$cache" && chmod 700 "$cache" || echo "cacheerror could not create $cache"
fi
tools="zstd curl sha256sum"
[ "$kind" = docker ] && tools="$tools docker"
for t in $tools; do
  if command -v "$t" >/dev/null 2>&1; then say "tool $t yes"; else say "tool $t no"; fi
done
d=$cache
while [ ! -d "$d" ]; do d=$(dirname "$d"); done
say "free $(df -Pk "$d" | awk 'NR == 2 {print $4}')"
if [ -d "$cache" ]; then say "cache $(stat -c '%a %U' "$cache")"; else say "cache missing"; fi
say "cpus $(nproc 2>/dev/null || echo 1)"
if [ "$kind" = docker ]; then
  command -v docker >/dev/null 2>&1 || exit 0
  prefix=$where
  if [ "$pinned" = 1 ]; then
    probe=$prefix
  else
    best=$(docker image ls --format '{{.Repository}}:{{.Tag}}' 2>/dev/null \
      | while IFS= read -r ref; do
          rest=${ref#"$prefix"}
          [ "$rest" != "$ref" ] || continue
          major=${rest%"$suffix"}
          [ "${major}$suffix" = "$rest" ] || continue
          case $major in ''|*[!0-9]*) continue ;; esac
          echo "$major"
        done | sort -n | tail -n 1)
    probe="$prefix${best:-latest}$suffix"
  fi
  where=$probe
  if ! out=$(client facts "$conn" </dev/null 2>&1); then
    say "dockererror $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    exit 0
  fi
  printf '%s\n' "$out" | grep -E '^(server|dberror) '
  num=$(printf '%s\n' "$out" | sed -n 's/^server \([0-9]*\) .*/\1/p')
  want=$probe
  if [ "$pinned" != 1 ] && [ -n "$num" ]; then want="$prefix$((num / 10000))$suffix"; fi
  say "image $want"
  if [ "$want" = "$probe" ]; then
    printf '%s\n' "$out" | grep '^client '
  elif v=$(docker run --rm --entrypoint pg_dump "$want" --version 2>&1); then
    say "client $v"
  else
    say "dockererror $(printf '%s' "$v" | tail -n 3 | tr '\n' ' ')"
  fi
else
  client facts "$conn" </dev/null 2>&1 | grep -E '^(client|server|dberror) ' \
    || say "dberror the client tools did not run (is pg_dump installed on the host?)"
fi
"""

#: One upload part: $1 file  $2 part size  $3 work dir  $4 logs dir  $5 part number (xargs).
_PART = r"""set -u
file=$1 size=$2 work=$3 logs=$4 n=$5
url=$(sed -n "${n}p" "$logs/urls")
blocks=$((size / 1048576))
dd if="$file" of="$work/part.$n" bs=1048576 skip=$(( (n - 1) * blocks )) count="$blocks" \
  status=none || exit 255
code=$(curl -sS --retry 3 --retry-delay 1 --connect-timeout 15 -T "$work/part.$n" \
  -D "$logs/part.$n.h" -o "$logs/part.$n.body" -w '%{http_code}' "$url" 2>"$logs/part.$n.err") \
  || code=000
rm -f "$work/part.$n"
case $code in
  2??) ;;
  000) printf 'part %s: no response: %s\n' "$n" "$(cat "$logs/part.$n.err")" >"$logs/part.$n.fail"
       exit 255 ;;
  *) printf 'part %s: HTTP %s %s\n' "$n" "$code" \
       "$(head -c 300 "$logs/part.$n.body" 2>/dev/null)" >"$logs/part.$n.fail"
     exit 255 ;;
esac
etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]:[[:space:]]*//p' "$logs/part.$n.h" | tr -d '\r')
printf 'etag %s %s\n' "$n" "$etag"
"""

#: $1 CLIENT  $2 cache  $3 id  $4 docker|host  $5 image | bin dir  $6 network  $7 conninfo
#: $8 single-PUT threshold (bytes)  $9 part size (bytes, a multiple of 1 MiB)
#: $10 parallel uploads  $11 dumps kept in the cache  $12 headers for the single PUT
#: stdin: password, single-PUT URL, then one presigned upload_part URL per line.
#: Exit codes: 11 a tool is missing, 12 id taken, 13 pg_dump older than the server,
#: 21/30 dump failed, 31 disk full, 32 compression, 40 upload.
CREATE = r"""set -eu
umask 077
inner=$1 cache=$2 id=$3 kind=$4 where=$5 net=$6 conn=$7 threshold=$8 part=$9
shift 9
conc=$1 keep=$2 headers=$3
IFS= read -r PGPASSWORD || PGPASSWORD=
export PGPASSWORD
IFS= read -r put_url || put_url=
""" + _CLIENT_FN + r"""
part_script=$(cat <<'EOS'
""" + _PART + r"""
EOS
)
for t in zstd curl sha256sum; do
  command -v "$t" >/dev/null 2>&1 || fail 11 "$t is missing on the host"
done
mkdir -p "$cache"
chmod 700 "$cache"
find "$cache" -maxdepth 1 -name '.work-*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
final="$cache/$id.dump.zst"
[ ! -e "$final" ] || fail 12 "$final exists already: a backup with id $id was made before"
work=$(mktemp -d "$cache/.work-$id.XXXXXX")
logs=$(mktemp -d)
ticker=
cleanup() {
  if [ -n "$ticker" ]; then kill "$ticker" 2>/dev/null || true; fi
  rm -rf "$work" "$logs" "$final.partial"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
cat >"$logs/urls"
disk_full() {
  grep -qi 'no space left' "$@" 2>/dev/null \
    || [ "$(df -Pk "$cache" | awk 'NR == 2 {print $4}')" -lt 1024 ]
}

say "phase dump"
raw="$work/raw.dump"
( while sleep 1; do [ -f "$raw" ] && say "progress $(stat -c %s "$raw")"; done ) &
ticker=$!
status=0
client dump "$conn" "$raw" </dev/null >"$logs/counts" 2>"$logs/dump.err" || status=$?
kill "$ticker" 2>/dev/null || true
ticker=
if [ "$status" -ne 0 ]; then
  cat "$logs/dump.err" >&2
  [ "$status" -ne 13 ] || fail 13 "the client is older than the server"
  disk_full "$logs/dump.err" && fail 31 "no space left on the host in $cache while dumping"
  fail 30 "pg_dump failed (exit $status)"
fi

say "phase compress $(stat -c %s "$raw")"
mkfifo "$logs/hash"
sha256 <"$logs/hash" >"$logs/sha" &
hasher=$!
status=0
{ zstd -q -1 -T0 -c "$raw" 2>"$logs/zstd.err" || echo >"$logs/zstd.failed"; } \
  | tee "$logs/hash" 2>"$logs/tee.err" >"$final.partial" || status=$?
wait "$hasher" || true
rm -f "$raw"
if [ "$status" -ne 0 ] || [ -f "$logs/zstd.failed" ]; then
  cat "$logs/tee.err" "$logs/zstd.err" >&2
  disk_full "$logs/tee.err" "$logs/zstd.err" \
    && fail 31 "no space left on the host in $cache while compressing"
  fail 32 "compressing the dump failed"
fi
sha=$(cut -d' ' -f1 <"$logs/sha")
size=$(stat -c %s "$final.partial")
say "dumped $size $sha"

if [ "$size" -le "$threshold" ]; then
  say "phase upload $size 1"
  set --
  while IFS= read -r h; do
    if [ -n "$h" ]; then set -- "$@" -H "$h"; fi
  done <<EOF
$headers
EOF
  code=$(curl -sS --retry 3 --retry-delay 1 --connect-timeout 15 -T "$final.partial" \
    -D "$logs/put.h" -o "$logs/put.body" -w '%{http_code}' "$@" "$put_url" 2>"$logs/put.err") \
    || code=000
  case $code in
    2??) say "uploaded single" ;;
    000) fail 40 "no response: $(cat "$logs/put.err")" ;;
    *) fail 40 "HTTP $code $(head -c 400 "$logs/put.body" 2>/dev/null)" ;;
  esac
else
  urls=$(grep -c . "$logs/urls" || true)
  n=$(( (size + part - 1) / part ))
  if [ "$n" -gt "$urls" ]; then
    part=$(( ( (size + urls - 1) / urls + 1048575 ) / 1048576 * 1048576 ))
    n=$(( (size + part - 1) / part ))
  fi
  say "phase upload $size $n"
  seq 1 "$n" | xargs -P "$conc" -n 1 sh -c "$part_script" part "$final.partial" "$part" "$work" \
    "$logs" 2>"$logs/xargs.err" \
    || fail 40 "$(cat "$logs"/part.*.fail "$logs/xargs.err" 2>/dev/null | head -n 3 | head -c 600)"
fi
mv "$final.partial" "$final"
ls -1 "$cache" | grep -E '^[0-9]{8}T[0-9]{6}Z\.dump\.zst$' | sort -r | tail -n +"$((keep + 1))" \
  | while IFS= read -r old; do rm -f "$cache/$old"; say "evicted $old"; done
cat "$logs/counts"
say "done"
"""

#: $1 CLIENT  $2 cache  $3 id  $4 docker|host  $5 image | bin dir  $6 network
#: $7 target conninfo  $8 expected sha256  $9 jobs (0: the host's CPU count)
#: $10 clean (1/0)  $11 scratch database ("" none)  $12 admin conninfo
#: $13 the deploy lock directory to hold ("" none; skipped when its parent, the app
#: directory, does not exist)  $14 holder.json for it  $15 this run's token
#: stdin: password, presigned GET URL of the dump.
#: Exit codes: 14 the deploy lock is held (prints "lock-held JSON"), 50 download failed,
#: 51 no copy with the right checksum, 60 pg_restore failed.
RESTORE = r"""set -eu
umask 077
inner=$1 cache=$2 id=$3 kind=$4 where=$5 net=$6 conn=$7 sha=$8 jobs=$9
shift 9
clean=$1 scratch=$2 admin=$3 lock=$4 holder=$5 token=$6
IFS= read -r PGPASSWORD || PGPASSWORD=
export PGPASSWORD
IFS= read -r get_url || get_url=
""" + _CLIENT_FN + r"""
locked= clientpid= work= logs=
cleanup() {
  if [ -n "$clientpid" ]; then
    exec 5>&- || true
    wait "$clientpid" 2>/dev/null || true
  fi
  [ -z "$work" ] || rm -rf "$work"
  [ -z "$logs" ] || rm -rf "$logs"
  [ -z "${cached:-}" ] || rm -f "$cached.partial"
  if [ -n "$locked" ] && [ -e "$lock/token.$token" ]; then rm -rf "$lock"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
if [ -n "$lock" ] && [ -d "$(dirname "$lock")" ]; then
  if ! mkdir "$lock" 2>/dev/null; then
    say "lock-held $(head -c 4000 "$lock/holder.json" 2>/dev/null | tr '\n' ' ')"
    fail 14 "the deploy lock $lock is held"
  fi
  locked=1
  : >"$lock/token.$token"
  printf '%s\n' "$holder" >"$lock/holder.json"
fi
mkdir -p "$cache"
chmod 700 "$cache"
cached="$cache/$id.dump.zst"
work=$(mktemp -d "$cache/.work-$id.XXXXXX")
logs=$(mktemp -d)
plain="$work/restore.dump"
[ "$jobs" -gt 0 ] || jobs=$(nproc 2>/dev/null || echo 2)
mkfifo "$logs/go"
# The client reports its exit status through $work/done (the cache directory is mounted
# in its container), so the restore is over when pg_restore is, not when Docker has torn
# the container down; the wrapper reports it too, should the client never get that far.
# Verification needs the client's output (row counts), so it waits for the client itself.
notify=
if [ -z "$scratch" ]; then
  notify="$work/done"
  mkfifo "$notify"
  exec 6<>"$notify"
fi
{
  client restore "$conn" "$plain" "$jobs" "$clean" "$scratch" "$admin" "$notify" \
    <"$logs/go" >"$logs/client.out" 2>"$logs/client.err"
  code=$?
  if [ -n "$notify" ]; then echo "exit $code" 1<>"$notify"; fi
  exit "$code"
} >/dev/null 2>&1 &
clientpid=$!
exec 5>"$logs/go"

# check_stream: stdin is the compressed dump as it downloads; hash it, keep a copy in $1
# and unpack it to $plain in one pass. It runs in a pipeline's subshell: `checked` reads
# its result in the caller (sets $got).
check_stream() {
  rm -f "$logs/h" "$logs/tee.failed"
  mkfifo "$logs/h"
  sha256 <"$logs/h" >"$logs/sha" &
  hasher=$!
  { tee "$logs/h" "$1" 2>>"$logs/check.err" || echo >"$logs/tee.failed"; } \
    | zstd -q -d -c >"$plain" 2>>"$logs/check.err" || true
  wait "$hasher" || true
}
checked() {
  if grep -qi 'no space left' "$logs/check.err" 2>/dev/null; then
    fail 31 "no space left on the host in $cache while unpacking the dump"
  fi
  got=$(cut -d' ' -f1 <"$logs/sha")
}

source=
if [ -f "$cached" ]; then
  say "phase check-cache"
  # two readers of the page cache on two cores: faster than one tee feeding both
  sha256 <"$cached" >"$logs/sha" &
  hasher=$!
  zstd -q -d -c <"$cached" >"$plain" 2>"$logs/check.err" || true
  wait "$hasher" || true
  checked
  if [ "$got" = "$sha" ]; then source=cache; else say "corrupt cache $got"; fi
fi
if [ -z "$source" ]; then
  say "phase download"
  rm -f "$logs/curl.failed"
  { curl -sS -f --retry 3 --retry-delay 1 --connect-timeout 15 "$get_url" 2>"$logs/curl.err" \
      || echo >"$logs/curl.failed"; } | check_stream "$cached.partial"
  checked
  if [ -f "$logs/curl.failed" ]; then
    fail 50 "download from S3 failed: $(tr '\n' ' ' <"$logs/curl.err")"
  fi
  if [ "$got" != "$sha" ]; then
    say "corrupt s3 $got"
    fail 51 "no copy of the dump has the manifest's checksum"
  fi
  mv -f "$cached.partial" "$cached"
  source=s3
fi

say "phase restore $source $jobs"
echo go >&5
exec 5>&-
status=0
if [ -n "$notify" ]; then
  IFS= read -r line <&6 || line="exit 1"
  status=${line#exit }
  if [ "$status" -eq 0 ]; then clientpid=; else wait "$clientpid" || true; fi
else
  wait "$clientpid" || status=$?
fi
cat "$logs/client.out"
if [ "$status" -ne 0 ]; then
  cat "$logs/client.err" >&2
  fail 60 "pg_restore failed (exit $status)"
fi
say "done"
"""

#: $1 cache dir. Prints "<file> <bytes>" for each cached dump.
CACHE_LIST = r"""set -eu
[ -d "$1" ] || exit 0
find "$1" -maxdepth 1 -name '*.dump.zst' -printf '%f %s\n'
"""

#: $1 cache dir  $2 dumps to keep  $3 dry run (1/0). Prints "evict <file>" per file.
CACHE_PRUNE = r"""set -eu
[ -d "$1" ] || exit 0
ls -1 "$1" | grep -E '^[0-9]{8}T[0-9]{6}Z\.dump\.zst$' | sort -r | tail -n +"$(($2 + 1))" \
  | while IFS= read -r old; do
      if [ "$3" = 1 ]; then echo "evict $old"; else rm -f "$1/$old" && echo "evict $old"; fi
    done
if [ "$3" != 1 ]; then
  find "$1" -maxdepth 1 -name '.work-*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
fi
"""


def quote_conninfo(value: str) -> str:
    """A libpq conninfo value in single quotes (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class DbTarget:
    """A database as the client reaches it from the host: conninfo without the password."""

    params: tuple[tuple[str, str], ...]
    password: str = field(repr=False)
    network: str = "host"

    @property
    def conninfo(self) -> str:
        return " ".join(f"{k}={quote_conninfo(v)}" for k, v in self.params)

    def get(self, name: str, default: str = "") -> str:
        return dict(self.params).get(name, default)

    @property
    def dbname(self) -> str:
        return self.get("dbname")

    @property
    def label(self) -> str:
        return f"{self.get('host')}:{self.get('port', '5432')}/{self.dbname}"

    def with_db(self, dbname: str) -> DbTarget:
        params = tuple((k, dbname if k == "dbname" else v) for k, v in self.params)
        return replace(self, params=params)


def target_from_url(url: str, network: str = "host") -> DbTarget:
    """A DbTarget from a libpq URL (postgresql://user:pw@host:port/db?sslmode=...)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
        raise UserError("a database URL must look like "
                        "postgresql://user:password@host:5432/dbname")
    try:
        port = parts.port or 5432
    except ValueError:
        raise UserError("the port in the database URL is not a number") from None
    params = [("host", parts.hostname), ("port", str(port)),
              ("dbname", unquote(parts.path.lstrip("/")) or unquote(parts.username or ""))]
    if parts.username:
        params.append(("user", unquote(parts.username)))
    query = dict(parse_qsl(parts.query))
    query.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
    params.extend(sorted(query.items()))
    return DbTarget(tuple(params), unquote(parts.password or ""), network)


def env_target(cfg: Config) -> DbTarget:
    """The environment's own database: the managed URL, or the stack's `db` service."""
    db = cfg.database
    if db.backend == "sqlite":
        raise UserError(f"environment {cfg.env} still runs on SQLite (database.backend: "
                        "sqlite): backups cover PostgreSQL, after inv db.cutover")
    if db.url is not None:
        return target_from_url(db.url.reveal())
    if db.local is not None:
        password = db.local.password.reveal() if db.local.password else ""
        return DbTarget((("host", "db"), ("port", "5432"), ("dbname", db.local.database),
                         ("user", db.local.user),
                         ("connect_timeout", str(CONNECT_TIMEOUT))),
                        password, network=f"{cfg.project}_backend")
    raise UserError(f"environment {cfg.env} has no database (database.url or database.local)")


@dataclass(frozen=True)
class Client:
    """How the host runs pg_dump/pg_restore: in a container of `image`, or its own tools."""

    kind: Literal["docker", "host"]
    image: str = "postgres:{major}"
    bin_dir: str = ""

    @classmethod
    def from_config(cls, cfg: Config) -> Client:
        assert cfg.backup is not None
        return cls(cfg.backup.client, cfg.backup.client_image, cfg.backup.client_bin_dir or "")

    @property
    def pinned(self) -> bool:
        return "{major}" not in self.image

    def image_for(self, major: int) -> str:
        return self.image.replace("{major}", str(major))

    def where(self, major: int) -> str:
        """The `where` argument of the host scripts: the image, or the host's bin dir."""
        return self.image_for(major) if self.kind == "docker" else self.bin_dir

    def describe(self, major: int) -> str:
        if self.kind == "docker":
            return f"docker {self.image_for(major)}"
        return f"host {self.bin_dir or '(PATH)'}"

    def check_network(self, target: DbTarget) -> None:
        if self.kind == "host" and target.network != "host":
            raise UserError(
                "backup.client: host cannot reach the stack's own `db` service (it sits on an "
                "internal Docker network): use backup.client: docker")


def facts_step(cache_dir: str, client: Client, target: DbTarget, *, create_cache: bool) -> Step:
    if client.kind == "docker":
        head, _, tail = client.image.partition("{major}")
        where, suffix = head, tail
    else:
        where, suffix = client.bin_dir, ""
    return script("gather backup facts", FACTS, CLIENT, cache_dir, client.kind, where, suffix,
                  target.network, target.conninfo, "1" if client.pinned else "0",
                  "1" if create_cache else "0", stdin=f"{target.password}\n".encode(),
                  timeout=300)


@dataclass(frozen=True)
class Upload:
    """Where and how the host uploads: a single-PUT URL with its signed headers, part URLs."""

    put_url: str
    put_headers: tuple[str, ...]
    part_urls: tuple[str, ...]
    threshold: int
    part_size: int
    concurrency: int


def create_step(cache_dir: str, backup_id: str, client: Client, major: int, target: DbTarget,
                upload: Upload, keep_local: int) -> Step:
    if upload.part_size % MIB or upload.part_size < 5 * MIB:
        raise ValueError("part size must be a multiple of 1 MiB and at least 5 MiB")
    stdin = "\n".join([target.password, upload.put_url, *upload.part_urls]) + "\n"
    return script("dump, compress and upload", CREATE, CLIENT, cache_dir, backup_id,
                  client.kind, client.where(major), target.network, target.conninfo,
                  str(upload.threshold), str(upload.part_size), str(upload.concurrency),
                  str(keep_local), "\n".join(upload.put_headers), stdin=stdin.encode())


@dataclass(frozen=True)
class HostLock:
    """The deploy lock a restore over the live database holds on the host while it runs."""

    path: str
    holder_json: str
    token: str


def restore_step(cache_dir: str, backup_id: str, client: Client, major: int, target: DbTarget,
                 sha256: str, get_url: str, *, jobs: int, clean: bool,
                 scratch: str = "", admin: DbTarget | None = None,
                 lock: HostLock | None = None) -> Step:
    stdin = f"{target.password}\n{get_url}\n".encode()
    return script("check and restore", RESTORE, CLIENT, cache_dir, backup_id, client.kind,
                  client.where(major), target.network, target.conninfo, sha256, str(jobs),
                  "1" if clean else "0", scratch, (admin or target).conninfo,
                  lock.path if lock else "", lock.holder_json if lock else "",
                  lock.token if lock else "", stdin=stdin)


def cache_list_step(cache_dir: str) -> Step:
    return script("list the host's backup cache", CACHE_LIST, cache_dir, timeout=60)


def cache_prune_step(cache_dir: str, keep: int, *, dry_run: bool) -> Step:
    return script("prune the host's backup cache", CACHE_PRUNE, cache_dir, str(keep),
                  "1" if dry_run else "0", timeout=120)


@dataclass(frozen=True)
class HostFacts:
    """What the facts script found on the host (and, through the client, the database)."""

    tools: dict[str, bool]
    free_kb: int | None
    cache: str
    cpus: int
    image: str
    client_version: str
    server_version_num: int | None
    db_size: int | None
    db_error: str
    docker_error: str
    cache_error: str

    @property
    def missing_tools(self) -> list[str]:
        return [name for name, ok in self.tools.items() if not ok]

    @property
    def client_major(self) -> int | None:
        version = self.client_version_text
        return int(version.split(".")[0]) if version and version[0].isdigit() else None

    @property
    def client_version_text(self) -> str:
        """'15.18' from 'pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)'."""
        words = self.client_version.split()
        for word in words:
            if word[:1].isdigit():
                return word
        return ""

    @property
    def server_major(self) -> int | None:
        return self.server_version_num // 10000 if self.server_version_num else None


def parse_facts(stdout: str) -> HostFacts:
    tools: dict[str, bool] = {}
    values: dict[str, str] = {}
    for line in stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "tool":
            name, _, answer = rest.partition(" ")
            tools[name] = answer == "yes"
        elif word in ("free", "cache", "cpus", "image", "client", "server", "dberror",
                      "dockererror", "cacheerror"):
            values[word] = rest.strip()
    server = values.get("server", "").split()
    return HostFacts(
        tools=tools,
        free_kb=int(values["free"]) if values.get("free", "").isdigit() else None,
        cache=values.get("cache", "missing"),
        cpus=int(values["cpus"]) if values.get("cpus", "").isdigit() else 1,
        image=values.get("image", ""),
        client_version=values.get("client", ""),
        server_version_num=int(server[0]) if server and server[0].isdigit() else None,
        db_size=int(server[1]) if len(server) > 1 and server[1].isdigit() else None,
        db_error=values.get("dberror", ""),
        docker_error=values.get("dockererror", ""),
        cache_error=values.get("cacheerror", ""),
    )


def parse_counts(stdout: str) -> dict[str, int]:
    """`count<TAB>table<TAB>n` lines into {table: n}."""
    counts: dict[str, int] = {}
    for line in stdout.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[0] == "count" and fields[2].isdigit():
            counts[fields[1]] = int(fields[2])
    return counts


def parse_etags(stdout: str) -> list[tuple[int, str]]:
    """`etag N VALUE` lines, in part order."""
    tags = []
    for line in stdout.splitlines():
        fields = line.split(" ", 2)
        if len(fields) == 3 and fields[0] == "etag" and fields[1].isdigit():
            tags.append((int(fields[1]), fields[2].strip()))
    return sorted(tags)


def parse_cache_list(stdout: str) -> dict[str, int]:
    """{backup id: size} of the dumps in the host's cache."""
    found: dict[str, int] = {}
    for line in stdout.splitlines():
        name, _, size = line.rpartition(" ")
        if name.endswith(".dump.zst") and size.isdigit():
            found[name.removesuffix(".dump.zst")] = int(size)
    return found


def part_plan(estimate: int, part_size: int, max_parts: int = 10_000) -> int:
    """How many part URLs to presign for a dump expected to be at most `estimate` bytes.

    The host widens its parts when the dump outgrows them, so this only has to be generous:
    twice the estimate (the database's size: the compressed dump is far smaller), at least 8.
    """
    wanted = -(-2 * max(estimate, 1) // part_size)
    return max(8, min(max_parts, wanted))


_CONNECT_ERRORS = ("could not connect", "connection to server", "connection refused",
                   "timeout expired", "could not translate host name", "no route to host",
                   "password authentication failed", "does not exist",
                   "no pg_hba.conf entry", "could not open a session")


def tail(text: str, lines: int = 3, limit: int = 500) -> str:
    """The last few non-empty lines of `text`, joined, for one-line messages."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    joined = " | ".join(kept)
    return joined if len(joined) <= limit else "..." + joined[-limit:]


def explain_failure(code: int, stderr: str, *, host: str, cache_dir: str, db: str) -> str:
    """One operator-facing sentence for a failed CREATE or RESTORE script (by exit code)."""
    detail = tail(stderr)
    if code in (21, 30):
        if any(marker in stderr.lower() for marker in _CONNECT_ERRORS):
            return (f"cannot connect to the database {db} from {host}: {detail}. Check "
                    f"database.url and that {host} may reach the database")
        return f"pg_dump failed on {host}: {detail}"
    if code == 31:
        return (f"the disk holding {cache_dir} on {host} is full ({detail}): free space there "
                f"(df -h {cache_dir}) or point backup.cache_dir at a larger disk. Nothing was "
                "recorded as a backup")
    if code == 12:
        return f"{detail}; wait a second and run it again"
    if code == 11:
        return f"{detail.split(' | ')[-1]}: install it on {host} (apt-get install zstd curl)"
    if code == 32:
        return f"compressing the dump failed on {host}: {detail}"
    if code == 40:
        return (f"the upload from {host} to S3 failed: {detail}. The partial upload was "
                "aborted and no backup was recorded")
    if code == 50:
        return f"downloading the dump from S3 to {host} failed: {detail}"
    if code == 60:
        if any(marker in stderr.lower() for marker in _CONNECT_ERRORS[:6]):
            return f"cannot connect to the target database {db} from {host}: {detail}"
        return f"pg_restore failed on {host}: {detail}"
    if code == 124:
        return f"the step on {host} timed out or the SSH connection dropped: {detail}"
    return f"the backup script failed on {host} (exit {code}): {detail or 'no output'}"


def check_facts(facts: HostFacts, client: Client, *, host: str, db: str,
                need_db: bool = True) -> None:
    """Refuse, with the fix, what would make a dump fail or be unrestorable."""
    if facts.cache_error:
        raise UserError(f"on {host}: {facts.cache_error}")
    missing = facts.missing_tools
    if "docker" in missing:
        raise UserError(f"{host} has no docker, which backup.client: docker needs: install "
                        "Docker, or set backup.client: host and install postgresql-client")
    if missing:
        raise UserError(f"{host} lacks {', '.join(missing)}, which backups need: install them "
                        f"(apt-get install {' '.join(missing).replace('sha256sum', 'coreutils')})")
    if facts.docker_error:
        raise UserError(f"the client container {facts.image or client.image} did not run on "
                        f"{host}: {facts.docker_error}. Check that the image exists there or "
                        "can be pulled (backup.client_image)")
    if not need_db:
        return
    if facts.db_error:
        raise UserError(f"cannot connect to the database {db} from {host}: {facts.db_error}. "
                        f"Check database.url and that {host} may reach the database")
    server, client_major = facts.server_major, facts.client_major
    if server is None or client_major is None:
        raise UserError(f"could not tell the versions of the server ({server}) and of pg_dump "
                        f"({facts.client_version or 'missing'}) on {host}")
    if client_major < server:
        version = facts.client_version_text
        if client.kind == "docker":
            fix = (f"set backup.client_image to a PostgreSQL {server} image (the default "
                   "postgres:{major} always matches the server)")
        else:
            fix = (f"install postgresql-client-{server} on {host} and set backup.client_bin_dir: "
                   f"/usr/lib/postgresql/{server}/bin, or use backup.client: docker")
        raise UserError(f"pg_dump {version} on {host} is older than the database server "
                        f"(PostgreSQL {server}), and pg_dump refuses newer servers: {fix}")


def parse_versions(stdout: str) -> tuple[int | None, str]:
    """(server_version_num, 'X.Y' of pg_dump) from the `server`/`client` lines of a dump."""
    num: int | None = None
    client = ""
    for line in stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "server" and rest.strip().isdigit():
            num = int(rest.strip())
        elif word == "client":
            client = next((w for w in rest.split() if w[:1].isdigit()), "")
    return num, client
