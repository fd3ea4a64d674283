# A backup on the host, in one round trip: dump (client.sh, in the dump's own snapshot),
# compress with zstd while hashing, upload to presigned URLs (one PUT up to THRESHOLD bytes,
# else multipart: PART_SIZE bytes a part, CONCURRENCY at once, part.sh), move the dump into
# the cache and evict the oldest beyond KEEP. Prints "phase ...", "progress BYTES",
# "dumped SIZE SHA256", "etag N VALUE" per part, "evicted FILE", the row counts, "done".
# Usage: create.sh CLIENT PART CACHE_DIR ID docker|host IMAGE|BIN_DIR NETWORK CONNINFO
#                  THRESHOLD PART_SIZE CONCURRENCY KEEP PUT_HEADERS
#        stdin: the password, the single-PUT URL, then one presigned upload_part URL a line.
# Exit codes: 11 a tool is missing, 12 id taken, 13 pg_dump older than the server,
# 21/30 dump failed, 31 disk full, 32 compression, 40 upload.
set -eu
umask 077
part_script=$2 cache=$3 id=$4 conn=$8 threshold=$9
client_setup "$1" "$5" "$6" "$7" "$cache"
shift 9
part=$1 conc=$2 keep=$3 headers=$4
IFS= read -r PGPASSWORD || PGPASSWORD=
export PGPASSWORD
IFS= read -r put_url || put_url=
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
old_dumps "$cache" "$keep" | while IFS= read -r old; do rm -f "$cache/$old"; say "evicted $old"; done
cat "$logs/counts"
say "done"
