# A backup on the host, in one round trip: dump (client.sh, in the dump's own snapshot),
# compress with zstd while hashing, upload to presigned URLs (one PUT up to THRESHOLD bytes,
# else multipart: PART_SIZE bytes a part, CONCURRENCY at once, part.sh), move the dump into
# the cache and evict the oldest beyond KEEP (never PROTECT_ID's: a restore under way needs
# it). Prints "phase ...", "progress BYTES", "dumped SIZE SHA256", "etag N VALUE" per part,
# "evicted FILE", the row counts, "done".
# Why the dump goes to a seekable file first: pg_dump writes each table's offset in the
# archive's table of contents only when it can seek back; `pg_restore -j` uses them to start
# the largest tables first (-25% restore time on the bench roster). zstd then compresses it
# (PostgreSQL 15's pg_dump has no zstd, and its gzip is several times slower for the size).
# Should its task die (killed, or its connection lost), it stops and removes its work; what
# a run that died left in the cache is removed by the next one (lib.sh: sweep_work).
# Usage: create.sh CLIENT PART CACHE_DIR ID docker|host IMAGE|BIN_DIR NETWORK CONNINFO
#                  THRESHOLD PART_SIZE CONCURRENCY KEEP PUT_HEADERS [PROTECT_ID]
#        stdin: the password, the single-PUT URL, then one presigned upload_part URL a line.
# A transfer that stalls for 5 minutes fails (curl --speed-time).
# Exit codes: 11 a tool is missing, 12 id taken, 13 pg_dump older than the server,
# 21/30 dump failed, 31 disk full, 32 compression, 40 upload.
set -eu
umask 077
# Once the task is gone, a write fails (and the script exits through its EXIT trap, which
# cleans up) instead of SIGPIPE killing it on the spot.
trap '' PIPE
client_sh=$1 part_script=$2 cache=$3 id=$4 kind=$5 where=$6 net=$7 conn=$8 threshold=$9
shift 9
part=$1 conc=$2 keep=$3 headers=$4 protect=${5:-}
IFS= read -r PGPASSWORD || PGPASSWORD=
export PGPASSWORD
IFS= read -r put_url || put_url=
for t in zstd curl sha256sum; do
  command -v "$t" >/dev/null 2>&1 || fail 11 "$t is missing on the host"
done
mkdir -p "$cache"
chmod 700 "$cache"
sweep_work "$cache"
final="$cache/$id.dump.zst"
[ ! -e "$final" ] || fail 12 "$final exists already: a backup with id $id was made before"
work=$(new_work "$cache" "$id")
logs="$work/logs"
mkdir "$logs"
client_setup "$client_sh" "$kind" "$where" "$net" "$cache" "$work"
cleanup() {
  set +e
  trap '' PIPE
  unwatch
  client_stop
  stop_running
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
cat >"$logs/urls"
disk_full() {
  grep -qi 'no space left' "$@" 2>/dev/null \
    || [ "$(df -Pk "$cache" | awk 'NR == 2 {print $4}')" -lt 1024 ]
}
watch_task "$work/dumping"

say "phase dump"
raw="$work/raw.dump"
ln -s raw.dump "$work/dumping"
status=0
run client dump "$conn" "$raw" </dev/null >"$logs/counts" 2>"$logs/dump.err" || status=$?
rm -f "$work/dumping"
if [ "$status" -ne 0 ]; then
  cat "$logs/dump.err" >&2
  [ "$status" -ne 13 ] || fail 13 "the client is older than the server"
  disk_full "$logs/dump.err" && fail 31 "no space left on the host in $cache while dumping"
  fail 30 "pg_dump failed (exit $status)"
fi

say "phase compress $(stat -c %s "$raw")"
dump="$work/dump.zst"
compress() {
  mkfifo "$logs/hash"
  sha256 <"$logs/hash" >"$logs/sha" &
  hasher=$!
  { zstd -q -1 -T0 -c "$raw" 2>"$logs/zstd.err" || echo >"$logs/zstd.failed"; } \
    | tee "$logs/hash" 2>"$logs/tee.err" >"$dump" || echo >"$logs/tee.failed"
  wait "$hasher" || true
}
run compress
rm -f "$raw"
if [ -f "$logs/tee.failed" ] || [ -f "$logs/zstd.failed" ]; then
  cat "$logs/tee.err" "$logs/zstd.err" >&2
  disk_full "$logs/tee.err" "$logs/zstd.err" \
    && fail 31 "no space left on the host in $cache while compressing"
  fail 32 "compressing the dump failed"
fi
sha=$(cut -d' ' -f1 <"$logs/sha")
size=$(stat -c %s "$dump")
say "dumped $size $sha"

if [ "$size" -le "$threshold" ]; then
  say "phase upload $size 1"
  set --
  while IFS= read -r h; do
    if [ -n "$h" ]; then set -- "$@" -H "$h"; fi
  done <<HEADERS
$headers
HEADERS
  run curl -sS --retry 3 --retry-delay 1 --connect-timeout 15 --speed-limit 1 \
    --speed-time 300 -T "$dump" -D "$logs/put.h" -o "$logs/put.body" -w '%{http_code}' "$@" \
    "$put_url" >"$logs/put.code" 2>"$logs/put.err" || true
  code=$(cat "$logs/put.code")
  case $code in
    2??) say "uploaded single" ;;
    ''|000) fail 40 "no response: $(cat "$logs/put.err")" ;;
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
  seq 1 "$n" >"$logs/parts"
  run setsid xargs -P "$conc" -n 1 sh -c "$part_script" part "$dump" "$part" "$work" "$logs" \
    <"$logs/parts" 2>"$logs/xargs.err" \
    || fail 40 "$(cat "$logs"/part.*.fail "$logs/xargs.err" 2>/dev/null | head -n 3 | head -c 600)"
fi
mv "$dump" "$final"
unwatch
old_dumps "$cache" "$keep" "$protect" | while IFS= read -r old; do
  rm -f "$cache/$old"
  say "evicted $old"
done
cat "$logs/counts"
say "done"
