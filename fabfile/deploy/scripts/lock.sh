# The host lock: one run at a time changes what a host serves (deploy, rollback, db.cutover,
# backup.restore over the live database). Every script that takes, checks or releases it
# does so through these functions (prepended to it).
#
# The lock is the directory LOCK (APP_DIR/lock), taken by an atomic mkdir. It holds:
#   token.TOKEN  an empty file naming the run that holds it (an inode, no data: it can be
#                created on a full disk). A run knows its lock by its token.
#   holder.json  who took it, when and for what: for people (`inv lock.status`).
#   phase.pid    "PID NAME" while a long step of the holder runs on the host.
# Functions keep their own variables in `_lock_*` names: callers' variables are left alone.
# shellcheck shell=sh

# lock_take LOCK HOLDER_JSON TOKEN [WAIT]: take LOCK for TOKEN, polling for up to WAIT
# seconds while another run holds it. Returns 0 once taken (also when TOKEN holds it
# already), 1 while another holds it, 2 when LOCK's directory cannot be written.
lock_take() {
  _lock_deadline=$(($(date +%s) + ${4:-0}))
  while :; do
    if lock_ours "$1" "$3"; then
      return 0
    fi
    if mkdir "$1" 2>/dev/null; then
      : > "$1/token.$3"
      printf '%s\n' "$2" > "$1/holder.json"
      return 0
    fi
    [ -w "$(dirname "$1")" ] || return 2
    [ "$(date +%s)" -lt "$_lock_deadline" ] || return 1
    sleep 0.5
  done
}

# lock_ours LOCK TOKEN: whether TOKEN holds LOCK.
lock_ours() {
  [ -n "$2" ] && [ -e "$1/token.$2" ]
}

# lock_held LOCK: whether any run holds LOCK.
lock_held() {
  [ -d "$1" ]
}

# lock_holder LOCK: print LOCK's holder.json; returns 1 when there is none.
lock_holder() {
  [ -f "$1/holder.json" ] && cat "$1/holder.json"
}

# lock_release LOCK TOKEN: remove LOCK if TOKEN holds it. Returns 0 when removed, 1 when
# another run holds it (left alone), 2 when there is no lock, 3 when removing it failed.
lock_release() {
  if lock_ours "$1" "$2"; then
    rm -rf "$1" || return 3
    return 0
  fi
  lock_held "$1" && return 1
  return 2
}

# lock_break LOCK: remove LOCK whoever holds it (`inv lock.release`, for a run that died).
lock_break() {
  rm -rf "$1"
}

# lock_phase LOCK: print "PID NAME" of the holder's long step while it runs; returns 1 when
# none runs.
lock_phase() {
  [ -f "$1/phase.pid" ] || return 1
  read -r _lock_pid _lock_name < "$1/phase.pid"
  kill -0 "$_lock_pid" 2>/dev/null || return 1
  printf '%s %s\n' "$_lock_pid" "$_lock_name"
}

# lock_phase_begin LOCK PID NAME: record that the holder's step NAME runs as PID.
lock_phase_begin() {
  echo "$2 $3" > "$1/phase.pid"
}

# lock_phase_end LOCK: that step is over.
lock_phase_end() {
  rm -f "$1/phase.pid"
}
