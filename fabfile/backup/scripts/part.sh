# One upload part of a multipart upload, run by create.sh through xargs -P: cuts part N out
# of FILE (SIZE bytes a part, a multiple of 1 MiB) and PUTs it to the Nth URL of LOGS/urls.
# Prints "etag N VALUE"; on failure writes why to LOGS/part.N.fail and exits 255 (xargs
# then starts no more parts).
# Usage: part.sh FILE SIZE WORK_DIR LOGS_DIR N
set -u
file=$1 size=$2 work=$3 logs=$4 n=$5
url=$(sed -n "${n}p" "$logs/urls")
blocks=$((size / 1048576))
dd if="$file" of="$work/part.$n" bs=1048576 skip=$(( (n - 1) * blocks )) count="$blocks" \
  status=none || exit 255
code=$(curl -sS --retry 3 --retry-delay 1 --connect-timeout 15 --speed-limit 1 \
  --speed-time 300 -T "$work/part.$n" -D "$logs/part.$n.h" -o "$logs/part.$n.body" \
  -w '%{http_code}' "$url" 2>"$logs/part.$n.err") || code=000
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
