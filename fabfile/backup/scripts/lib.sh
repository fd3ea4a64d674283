# Functions shared by the backup's host scripts, prepended to them.
# shellcheck shell=sh

# client_setup CLIENT_SH docker|host IMAGE|BIN_DIR NETWORK CACHE_DIR: how `client` runs
# client.sh (the text CLIENT_SH): in a container of IMAGE on NETWORK with CACHE_DIR mounted,
# or with the host's own tools (BIN_DIR first on PATH).
client_setup() {
  _client_sh=$1 _client_kind=$2 _client_where=$3 _client_net=$4 _client_cache=$5
}

# client MODE ARG...: run client.sh.
client() {
  if [ "$_client_kind" = docker ]; then
    docker run --rm -i --network "$_client_net" --user "$(id -u):$(id -g)" -e PGPASSWORD \
      -v "$_client_cache:$_client_cache" --entrypoint sh "$_client_where" -c "$_client_sh" \
      client "$@"
  else
    PATH="${_client_where:+$_client_where:}$PATH" sh -c "$_client_sh" client "$@"
  fi
}

# sha256: the SHA-256 of stdin. OpenSSL's uses the CPU's SHA extensions: about three times
# sha256sum's speed.
sha256() {
  if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi
}

# old_dumps CACHE_DIR KEEP [PROTECT_ID]: the names of the cached dumps beyond the newest KEEP
# (a backup id is its time, so names sort by age), never PROTECT_ID's.
old_dumps() {
  find "$1" -maxdepth 1 -name '*.dump.zst' -printf '%f\n' \
    | grep -E '^[0-9]{8}T[0-9]{6}Z\.dump\.zst$' | sort -r | tail -n +"$(($2 + 1))" \
    | grep -vxF "${3:-}.dump.zst"
}

say() { printf '%s\n' "$*"; }

fail() { code=$1; shift; printf '%s\n' "$*" >&2; exit "$code"; }
