# What the host offers backups, in one round trip: tools, free space, the cache directory,
# CPUs, and (through client.sh) the client's and the server's versions.
# Usage: facts.sh CLIENT CACHE_DIR docker|host IMAGE_PREFIX|BIN_DIR IMAGE_SUFFIX NETWORK
#                 CONNINFO PINNED CREATE_CACHE       (stdin: the database password)
# PINNED is 1 when the image has no {major}; CREATE_CACHE 1 creates the cache (0700).
# Prints "tool NAME yes|no", "free KB", "cache MODE|missing", "cpus N", "image REF",
# client.sh's facts lines, and "dockererror ..." when Docker fails.
set -u
cache=$2 kind=$3 where=$4 suffix=$5 conn=$7 pinned=$8 mkcache=$9
client_setup "$1" "$kind" "$where" "$6" "$cache"
IFS= read -r PGPASSWORD || PGPASSWORD=
export PGPASSWORD
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
  client_setup "$1" "$kind" "$probe" "$6" "$cache"
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
