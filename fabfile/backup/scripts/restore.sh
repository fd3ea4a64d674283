# A restore (or a verification) on the host, in one round trip: check the cached dump
# against the manifest's SHA256 (else download it from the presigned URL, hashing and
# unpacking it on the way, and keep it in the cache), and only then let client.sh restore
# it with pg_restore -j JOBS (0: the host's CPU count) into CONNINFO: cleaning what the dump
# holds (CLEAN=1), or into the scratch database SCRATCH it creates through ADMIN.
# Over the live database it holds the deploy lock LOCK_DIR meanwhile (skipped when LOCK_DIR
# is empty or its parent, the app directory, does not exist).
# Usage: restore.sh CLIENT CACHE_DIR ID docker|host IMAGE|BIN_DIR NETWORK CONNINFO SHA256 JOBS
#                   CLEAN SCRATCH ADMIN_CONNINFO LOCK_DIR HOLDER_JSON TOKEN
#        stdin: the password, the presigned GET URL of the dump.
# Exit codes: 14 the deploy lock is held (prints "lock-held JSON"), 50 download failed,
# 51 no copy with the right checksum, 60 pg_restore failed.
set -eu
umask 077
cache=$2 id=$3 conn=$7 sha=$8 jobs=$9
client_setup "$1" "$4" "$5" "$6" "$cache"
shift 9
clean=$1 scratch=$2 admin=$3 lock=$4 holder=$5 token=$6
IFS= read -r PGPASSWORD || PGPASSWORD=
export PGPASSWORD
IFS= read -r get_url || get_url=
locked='' clientpid='' work='' logs=
cleanup() {
  if [ -n "$clientpid" ]; then
    exec 5>&- || true
    wait "$clientpid" 2>/dev/null || true
  fi
  [ -z "$work" ] || rm -rf "$work"
  [ -z "$logs" ] || rm -rf "$logs"
  [ -z "${cached:-}" ] || rm -f "$cached.partial"
  if [ -n "$locked" ]; then lock_release "$lock" "$token" || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
if [ -n "$lock" ] && [ -d "$(dirname "$lock")" ]; then
  if ! lock_take "$lock" "$holder" "$token"; then
    say "lock-held $(lock_holder "$lock" | head -c 4000 | tr '\n' ' ')"
    fail 14 "the deploy lock $lock is held"
  fi
  locked=1
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
