# Runs one long phase of a deploy (a script given as BODY) detached from the connection, so a
# dropped SSH session or an interrupted operator never kills it halfway: it runs in its own
# session, its output goes to LOCK_DIR/phase.log and its pid to LOCK_DIR/phase.pid, and this
# wrapper waits for it, then prints the log and exits with its code. While it runs, the
# phase heartbeat (LOCK_DIR/beat.phase) is renewed every BEAT seconds, also when this
# wrapper's client is gone: a lock whose client died is not stale while its phase runs.
# `finish.sh` signals a phase whose operator went away; each phase decides in its TERM trap
# what is safe to do. A run that no longer holds the lock (TOKEN) starts no phase.
# Usage: phase.sh LOCK_DIR TOKEN BEAT NAME BODY [ARG...]
set -u
lock_dir=$1 token=$2 beat=$3 name=$4 body=$5
shift 5
if ! lock_ours "$lock_dir" "$token"; then
  echo "@error lock-lost"
  exit 75
fi
log="$lock_dir/phase.log"
setsid sh -c "$body" "$name" "$@" </dev/null >"$log" 2>&1 &
pid=$!
lock_phase_begin "$lock_dir" "$pid" "$name"
lock_phase_beat "$lock_dir" "$token" "$pid" "$beat" "$name pid $pid on $(uname -n)" \
  </dev/null >/dev/null 2>&1 &
beater=$!
wait "$pid"
code=$?
kill "$beater" 2>/dev/null
lock_phase_end "$lock_dir"
cat "$log"
exit "$code"
