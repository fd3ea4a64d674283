# Functions shared by the backup's host scripts, prepended to them.
# shellcheck shell=sh

say() { printf '%s\n' "$*"; }

fail() { code=$1; shift; printf '%s\n' "$*" >&2; exit "$code"; }

# spawn CMD...: start CMD in the background ($! is its pid), keeping this stdin: an
# asynchronous command would get /dev/null.
spawn() {
  { "$@" <&8 8<&- & } 8<&0
}

# run CMD...: CMD in the background, waited for, so that a TERM reaches this script's trap at
# once (a shell runs a trap only between commands); $running is its pid meanwhile, and
# `stop_running` ends it (with its process group, for `run setsid CMD`).
run() {
  spawn "$@"
  running=$!
  _run_status=0
  wait "$running" || _run_status=$?
  running=''
  return "$_run_status"
}

stop_running() {
  if [ -n "${running:-}" ]; then
    kill -TERM "-$running" 2>/dev/null || kill -TERM "$running" 2>/dev/null || true
  fi
}

# These functions are safe under `set -e`.

# watch_task [FILE]: in the background, print a line every second: "progress BYTES" while
# FILE exists, else an empty one. Once printing fails, the task's end of the connection is
# gone (killed, or its network lost): TERM this script, whose trap stops its work and cleans
# up, instead of running on unseen. `unwatch` stops it (before the final report).
watch_task() {
  _watch_main=$$
  (
    trap '' PIPE
    while sleep 1; do
      _watch_line=
      if [ -n "${1:-}" ] && [ -e "$1" ]; then
        _watch_line="progress $(stat -L -c %s "$1" 2>/dev/null)"
      fi
      if ! printf '%s\n' "$_watch_line" 2>/dev/null; then
        kill -TERM "$_watch_main" 2>/dev/null
        exit 0
      fi
    done
  ) &
  watcher=$!
}

unwatch() {
  if [ -n "${watcher:-}" ]; then
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    watcher=''
  fi
}

# new_work CACHE_DIR NAME: make and print a fresh work directory in the cache, holding this
# script's pid, so that `sweep_work` knows when its run is over.
new_work() {
  _work=$(mktemp -d "$1/.work-$2.XXXXXX") && echo "$$" > "$_work/pid" && echo "$_work"
}

# sweep_work CACHE_DIR: remove the work directories that runs which died left behind (their
# pid names no live process; one without a pid file yet gets a minute).
sweep_work() {
  for _dir in "$1"/.work-*; do
    [ -d "$_dir" ] || continue
    if [ -f "$_dir/pid" ]; then
      if kill -0 "$(cat "$_dir/pid")" 2>/dev/null; then continue; fi
    elif [ -z "$(find "$_dir" -maxdepth 0 -mmin +1)" ]; then
      continue
    fi
    rm -rf "$_dir"
  done
}

# client_setup CLIENT_SH docker|host IMAGE|BIN_DIR NETWORK CACHE_DIR [RUN_DIR]: how `client`
# runs client.sh (the text CLIENT_SH): in a container of IMAGE on NETWORK with CACHE_DIR
# mounted, or with the host's own tools (BIN_DIR first on PATH). With RUN_DIR, `client`
# leaves there what `client_stop` needs to end it.
client_setup() {
  _client_sh=$1 _client_kind=$2 _client_where=$3 _client_net=$4 _client_cache=$5
  _client_run=${6:-}
}

# client MODE ARG...: run client.sh.
client() {
  if [ "$_client_kind" = docker ]; then
    [ -z "$_client_run" ] || rm -f "$_client_run/client.cid"
    docker run --rm -i ${_client_run:+--cidfile "$_client_run/client.cid"} \
      --network "$_client_net" --user "$(id -u):$(id -g)" -e PGPASSWORD \
      -v "$_client_cache:$_client_cache" --entrypoint sh "$_client_where" -c "$_client_sh" \
      client "$@"
  elif [ -n "$_client_run" ]; then
    # in its own process group: client_stop ends psql and pg_dump or pg_restore with it
    spawn env PATH="${_client_where:+$_client_where:}$PATH" setsid sh -c "$_client_sh" \
      client "$@"
    echo "$!" > "$_client_run/client.pid"
    wait "$!"
  else
    PATH="${_client_where:+$_client_where:}$PATH" sh -c "$_client_sh" client "$@"
  fi
}

# client_stop: end the client.sh run `client` started, should it still run.
client_stop() {
  [ -n "$_client_run" ] || return 0
  if [ -s "$_client_run/client.cid" ]; then
    docker rm -f "$(cat "$_client_run/client.cid")" >/dev/null 2>&1 || true
  fi
  if [ -s "$_client_run/client.pid" ]; then
    kill -TERM "-$(cat "$_client_run/client.pid")" 2>/dev/null || true
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
