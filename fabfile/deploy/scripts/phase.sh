# Runs one long phase of a deploy (a script given as BODY) detached from the connection, so a
# dropped SSH session or an interrupted operator never kills it halfway: it runs in its own
# session, its output goes to LOCK_DIR/phase.log and its pid to LOCK_DIR/phase.pid, and this
# wrapper waits for it, then prints the log and exits with its code. `finish.sh` signals a
# phase whose operator went away; each phase decides in its TERM trap what is safe to do.
# Usage: phase.sh LOCK_DIR NAME BODY [ARG...]
set -u
lock_dir=$1 name=$2 body=$3
shift 3
if ! lock_held "$lock_dir"; then
  echo "@error lock-lost"
  exit 75
fi
log="$lock_dir/phase.log"
setsid sh -c "$body" "$name" "$@" </dev/null >"$log" 2>&1 &
pid=$!
lock_phase_begin "$lock_dir" "$pid" "$name"
wait "$pid"
code=$?
lock_phase_end "$lock_dir"
cat "$log"
exit "$code"
