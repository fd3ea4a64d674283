# The host lock: one run at a time changes what a host serves (deploy, rollback, db.cutover,
# backup.restore over the live database). Every script that takes, checks or releases it
# does so through these functions (prepended to it).
#
# The lock is the directory LOCK (APP_DIR/lock), taken by an atomic mkdir. It holds:
#   token.TOKEN  an empty file naming the run that holds it (an inode, no data: it can be
#                created on a full disk). A run knows its lock by its token.
#   holder.json  who took it, when and for what: for people (`inv lock.status`).
#   phase.pid    "PID NAME" while a long step of the holder runs on the host, then a line
#                telling that process from a later one with the same pid (boot id, start).
#   beat.client  the heartbeat of the holder's client: rewritten every few seconds while the
#                client lives (`heartbeat.sh`); it says where the client runs.
#   beat.phase   the heartbeat of the detached phase (`phase.sh`), while it runs.
# A lock is stale when no sign of life (a heartbeat, else the taking of the lock) is newer
# than STALE_AFTER seconds and no phase of its holder runs: its run died. A stale lock of a
# deploy or rollback may be taken over (`lock_take`): it is moved aside to LOCK.dead.
# Functions keep their own variables in `_lock_*` names: callers' variables are left alone.
# shellcheck shell=sh

# lock_take LOCK HOLDER_JSON TOKEN [WAIT [STALE_AFTER [AUDIT_LINE]]]: take LOCK for TOKEN,
# polling for up to WAIT seconds while another run holds it. With STALE_AFTER, a stale lock
# that `lock_recoverable` allows is taken over (`lock_take_over`, which audits it with
# AUDIT_LINE). Returns 0 once taken (also when TOKEN holds it already), 3 once taken over,
# 1 while another holds it, 2 when LOCK's directory cannot be written.
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
    if [ -n "${5:-}" ] && lock_take_over "$1" "$5" "${6:-}" "$3" "$2"; then
      return 3
    fi
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

# lock_proc PID: what tells this process from a later one with the same pid (the boot id
# and its start time); nothing where /proc does not say.
lock_proc() {
  [ -r "/proc/$1/stat" ] || return 0
  printf '%s %s' "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" \
    "$(sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f20)"
}

# lock_phase LOCK: print "PID NAME" of the holder's long step while it runs; returns 1 when
# none runs (its process is gone, or its pid now names another process).
lock_phase() {
  [ -f "$1/phase.pid" ] || return 1
  { read -r _lock_pid _lock_name; read -r _lock_id || _lock_id=; } < "$1/phase.pid"
  kill -0 "$_lock_pid" 2>/dev/null || return 1
  [ -z "$_lock_id" ] || [ "$(lock_proc "$_lock_pid")" = "$_lock_id" ] || return 1
  printf '%s %s\n' "$_lock_pid" "$_lock_name"
}

# lock_phase_begin LOCK PID NAME: record that the holder's step NAME runs as PID.
lock_phase_begin() {
  printf '%s %s\n%s\n' "$2" "$3" "$(lock_proc "$2")" > "$1/phase.pid"
}

# lock_phase_end LOCK: that step is over.
lock_phase_end() {
  rm -f "$1/phase.pid"
}

# lock_beat LOCK TOKEN KIND TEXT: while TOKEN holds LOCK, renew its heartbeat KIND (client,
# phase) with TEXT, where that part of the run lives (written aside, then renamed: a reader
# never sees it half-written).
lock_beat() {
  lock_ours "$1" "$2" || return 0
  { printf '%s\n' "$4" > "$1/.beat.$3" && mv -f "$1/.beat.$3" "$1/beat.$3"; } 2>/dev/null
}

# lock_phase_beat LOCK TOKEN PID EVERY TEXT: the phase heartbeat, every EVERY seconds for as
# long as the process PID lives.
lock_phase_beat() {
  while kill -0 "$3" 2>/dev/null; do
    lock_beat "$1" "$2" phase "$5"
    sleep "$4"
  done
}

# lock_age LOCK: seconds since the newest sign of life of LOCK's holder: a heartbeat, else
# the taking of the lock (holder.json, the directory itself).
lock_age() {
  _lock_newest=$(stat -c %Y "$1"/beat.* "$1/holder.json" "$1" 2>/dev/null | sort -n | tail -n 1)
  [ -n "$_lock_newest" ] || return 1
  echo $(($(date +%s) - _lock_newest))
}

# lock_stale LOCK STALE_AFTER: whether LOCK's run is dead: no sign of life for more than
# STALE_AFTER seconds and no phase of it running.
lock_stale() {
  _lock_age=$(lock_age "$1") || return 1
  [ "$_lock_age" -gt "$2" ] && ! lock_phase "$1" >/dev/null
}

# lock_recoverable LOCK: whether a run may take LOCK over once it is stale: a deploy's or a
# rollback's (the next deploy converges from what it finds), or one that died before it
# said whose it was. A restore or a cutover that died needs a person: the database or the
# maintenance page may be half-way.
lock_recoverable() {
  [ -f "$1/holder.json" ] || return 0
  grep -Eq '"command": "(deploy|rollback)"' "$1/holder.json"
}

# lock_token LOCK: the name of LOCK's token file (nothing when it has none).
lock_token() {
  for _lock_file in "$1"/token.*; do
    [ -e "$_lock_file" ] && printf '%s\n' "${_lock_file##*/}"
  done
  return 0
}

# lock_take_over LOCK STALE_AFTER AUDIT_LINE TOKEN HOLDER_JSON: take LOCK over for TOKEN
# when it is stale and recoverable, in place: its contents move to LOCK.dead (replacing an
# older one) and TOKEN's take their place, so LOCK never disappears and a run arriving then
# cannot take it first. One run only does it: the one that creates LOCK/takeover while LOCK
# still has the token it judged stale. AUDIT_LINE (a JSON object, may be empty) is appended
# to the audit log beside LOCK with how long the lock was stale and its holder. Returns 1
# when it did not take it over.
lock_take_over() {
  _lock_seen=$(lock_token "$1")
  if ! lock_recoverable "$1" || ! lock_stale "$1" "$2"; then
    return 1
  fi
  _lock_stale_for=$_lock_age
  mkdir "$1/takeover" 2>/dev/null || return 1
  if [ "$(lock_token "$1")" != "$_lock_seen" ]; then
    rmdir "$1/takeover" 2>/dev/null
    return 1
  fi
  rm -rf "$1.dead"
  mkdir "$1.dead" || { rmdir "$1/takeover"; return 1; }
  for _lock_file in "$1"/*; do
    [ "$_lock_file" = "$1/takeover" ] || [ ! -e "$_lock_file" ] || mv "$_lock_file" "$1.dead/"
  done
  echo "$_lock_stale_for" > "$1.dead/stale_for"
  : > "$1/token.$4"
  printf '%s\n' "$5" > "$1/holder.json"
  rmdir "$1/takeover"
  [ -z "${3:-}" ] || lock_takeover_line "$1.dead" "$3" >> "$(dirname "$1")/audit.log"
}

# lock_takeover_line DEAD LINE: LINE (a JSON object) with `stale_for` (seconds) and
# `holder` (the dead lock's holder.json when it is one JSON line, else null) added.
lock_takeover_line() {
  _lock_who=null
  if [ "$(wc -l < "$1/holder.json" 2>/dev/null)" = 1 ] && grep -q '^{.*}$' "$1/holder.json"
  then
    _lock_who=$(cat "$1/holder.json")
  fi
  printf '%s, "stale_for": %s, "holder": %s}\n' "${2%\}}" "$(cat "$1/stale_for")" "$_lock_who"
}

# lock_report LOCK STALE_AFTER: for people, the state of a lock another run holds, as facts
# lines: `lock_age SECONDS`, `lock_stale 0|1`, `lock_client B64` (where its client runs),
# `lock_phase B64` ("running NAME pid PID", or "exited " and its last heartbeat's text).
lock_report() {
  if _lock_age=$(lock_age "$1"); then echo "lock_age $_lock_age"; fi
  if lock_stale "$1" "$2"; then echo "lock_stale 1"; else echo "lock_stale 0"; fi
  if [ -f "$1/beat.client" ]; then echo "lock_client $(lock_b64 < "$1/beat.client")"; fi
  if _lock_running=$(lock_phase "$1"); then
    echo "lock_phase $(printf 'running %s pid %s' "${_lock_running#* }" "${_lock_running%% *}" \
      | lock_b64)"
  elif [ -f "$1/beat.phase" ]; then
    echo "lock_phase $(printf 'exited %s' "$(head -n 1 "$1/beat.phase")" | lock_b64)"
  fi
}

lock_b64() { base64 -w0 2>/dev/null || base64 | tr -d '\n'; }
