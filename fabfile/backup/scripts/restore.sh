# A restore (or a verification) on the host, in one round trip. First the dump: the cached
# copy when its SHA256 is the manifest's, else a download from the presigned URL (hashed on
# the way, kept in the cache once it checks out); nothing touches a database before that.
# ACTION `check` stops there and prints client.sh's plan of the restore (what it would
# drop, what it may not do): a preflight that changes nothing. ACTION `restore` unpacks it
# and lets client.sh restore it (see its `restore` mode) with pg_restore -j JOBS (0: the
# host's CPU count) into CONNINFO, exactly (MODE `exact`), or only when CONNINFO holds
# nothing to drop (MODE `empty`), or into the scratch database SCRATCH it creates through
# ADMIN_CONNINFO. Over the live database it runs under the host lock LOCK_DIR, which the
# task took with TOKEN (`inv lock.status` shows it as the lock's running phase).
# Should its task die, it stops (the database then holds what client.sh got to) and
# removes its work; the lock stays, for `inv lock.release`.
# Usage: restore.sh CLIENT CACHE_DIR ID docker|host IMAGE|BIN_DIR NETWORK CONNINFO SHA256
#                   JOBS check|restore exact|empty SCRATCH ADMIN_CONNINFO LOCK_DIR TOKEN
#        stdin: the password, the presigned GET URL of the dump.
# Exit codes: 14 the lock is not this run's, 31 disk full, 50 download failed, 51 no copy
# with the right checksum; client.sh's: 60 pg_restore failed (after the drop), 61 the drop
# failed, 62 privileges forbid an exact restore, 63 the target holds objects, 64 the
# database or the dump could not be read (61 to 64: nothing changed).
set -eu
umask 077
# Once the task is gone, a write fails (and the script exits through its EXIT trap, which
# cleans up) instead of SIGPIPE killing it on the spot.
trap '' PIPE
client_sh=$1 cache=$2 id=$3 kind=$4 where=$5 net=$6 conn=$7 sha=$8 jobs=$9
shift 9
action=$1 how=$2 scratch=$3 admin=$4 lock=$5 token=$6
IFS= read -r PGPASSWORD || PGPASSWORD=
export PGPASSWORD
IFS= read -r get_url || get_url=
if [ -n "$lock" ] && ! lock_ours "$lock" "$token"; then
  say "lock-lost"
  fail 14 "the lock $lock is not held by this run any more"
fi
mkdir -p "$cache"
chmod 700 "$cache"
sweep_work "$cache"
cached="$cache/$id.dump.zst"
work=$(new_work "$cache" "$id")
logs="$work/logs"
mkdir "$logs"
client_setup "$client_sh" "$kind" "$where" "$net" "$cache" "$work"
clientpid='' finished=''
cleanup() {
  set +e
  trap '' PIPE
  unwatch
  [ -n "$finished" ] || client_stop
  stop_running
  [ -z "$clientpid" ] || kill "$clientpid" 2>/dev/null
  rm -rf "$work"
  [ -z "$lock" ] || lock_phase_end "$lock"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
[ -z "$lock" ] || lock_phase_begin "$lock" "$$" "backup.restore"
watch_task
plain=/dev/null
if [ "$action" = restore ]; then
  plain="$work/restore.dump"
  [ "$jobs" -gt 0 ] || jobs=$(nproc 2>/dev/null || echo 2)
  # The client starts (a container takes a moment) while the checksum is computed and waits
  # for "go" on a fifo. It reports its exit status through $work/done (the cache directory
  # is mounted in its container) as soon as pg_restore is over, before Docker tears it
  # down; restore_client reports it too, should the client never get that far. A
  # verification needs the client's row counts, so it waits for the client itself.
  mkfifo "$logs/go" "$work/done"
  exec 5<>"$logs/go" 6<>"$work/done"
  notify="$work/done"
  [ -z "$scratch" ] || notify=''
  restore_client() {
    code=0
    client restore "$conn" "$plain" "$jobs" "$how" "$scratch" "$admin" "$notify" || code=$?
    echo "exit $code" 1<>"$work/done"
  }
  spawn restore_client <"$logs/go" >"$logs/client.out" 2>"$logs/client.err" 5>&-
  clientpid=$!
fi

# check_stream FILE: stdin is the compressed dump as it downloads; hash it, keep a copy in
# FILE and unpack it to $plain, in one pass.
check_stream() {
  rm -f "$logs/h"
  mkfifo "$logs/h"
  sha256 <"$logs/h" >"$logs/sha" &
  hasher=$!
  { tee "$logs/h" "$1" 2>>"$logs/check.err" || echo >"$logs/tee.failed"; } \
    | zstd -q -d -c >"$plain" 2>>"$logs/check.err" || true
  wait "$hasher" || true
}
check_cache() {
  # two readers of the page cache on two cores: faster than one tee feeding both
  sha256 <"$cached" >"$logs/sha" &
  hasher=$!
  if [ "$plain" != /dev/null ]; then zstd -q -d -c <"$cached" >"$plain" 2>"$logs/check.err"; fi
  wait "$hasher" || true
}
download() {
  { curl -sS -f --retry 3 --retry-delay 1 --connect-timeout 15 --speed-limit 1 \
      --speed-time 300 "$get_url" 2>"$logs/curl.err" \
      || echo >"$logs/curl.failed"; } | check_stream "$work/download.zst"
}
plan_restore() {
  zstd -q -d -c <"$cached" 2>/dev/null | client plan "$conn" "$how"
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
  run check_cache || true
  checked
  if [ "$got" = "$sha" ]; then source=cache; else say "corrupt cache $got"; fi
fi
if [ -z "$source" ]; then
  say "phase download"
  run download || true
  checked
  if [ -f "$logs/curl.failed" ]; then
    fail 50 "download from S3 failed: $(tr '\n' ' ' <"$logs/curl.err")"
  fi
  if [ "$got" != "$sha" ]; then
    say "corrupt s3 $got"
    fail 51 "no copy of the dump has the manifest's checksum"
  fi
  mv -f "$work/download.zst" "$cached"
  source=s3
fi

if [ "$action" = check ]; then
  say "phase plan $source"
  status=0
  run plan_restore >"$logs/client.out" 2>"$logs/client.err" || status=$?
  unwatch
  cat "$logs/client.out"
  if [ "$status" -ne 0 ]; then
    cat "$logs/client.err" >&2
    exit "$status"
  fi
  say "done"
  exit 0
fi

say "phase restore $source $jobs"
echo go >&5
IFS= read -r line <&6 || line="exit 1"
status=${line#exit }
if [ "$status" -eq 0 ]; then clientpid='' finished=1; else wait "$clientpid" || true; fi
unwatch
cat "$logs/client.out"
if [ -f "$work/done.out" ]; then cat "$work/done.out"; fi
if [ "$status" -ne 0 ]; then
  cat "$logs/client.err" >&2
  case $status in
    6[0-4]) exit "$status" ;;
    *) fail 60 "the restore failed (exit $status)" ;;
  esac
fi
say "done"
