# Ends a deploy on one host in one round trip. If an interrupted operator left a phase running,
# signals it (TERM: the phase undoes or completes, as is safe) and waits up to ABORT_WAIT
# seconds. Then switches `current` to SWITCH_TO atomically (a temp symlink renamed over it)
# and marks that release live, removes the PRUNE releases and stale staging directories,
# removes the images of CLEAN_REPO that this app pulled (APP_DIR/cache/pulled) and no
# release left on the host names (never one a rollback could need; Docker refuses those a
# container uses), appends AUDIT_LINE to audit.log, and releases the lock if it still holds
# TOKEN (KEEP=keep holds on to it: the run goes on). A run that no longer holds the lock
# (taken over as stale, or released by hand) changes nothing but the audit log.
# Usage: finish.sh APP_DIR TOKEN ABORT_WAIT SWITCH_TO AUDIT_LINE CLEAN_REPO KEEP [PRUNE_ID...]
set -u
trap '' TERM INT HUP
app_dir=$1 token=$2 abort_wait=$3 switch_to=$4 audit=$5 clean_repo=$6 keep=$7
shift 7
lock="$app_dir/lock"
code=0

if ! lock_ours "$lock" "$token"; then
  printf '%s\n' "$audit" >> "$app_dir/audit.log" || code=1
  if lock_held "$lock"; then echo "@lock-not-ours"; else echo "@lock-gone"; fi
  exit "$code"
fi

if running=$(lock_phase "$lock"); then
  pid=${running%% *} name=${running#* }
  echo "@aborting $name"
  kill -TERM "$pid" 2>/dev/null
  deadline=$(($(date +%s) + abort_wait))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "@still-running $name $pid"
      code=4
      break
    fi
    sleep 0.2
  done
  sed 's/^/@phase-log /' "$lock/phase.log" 2>/dev/null | tail -n 40
fi

if [ -n "$switch_to" ]; then
  if [ -d "$app_dir/releases/$switch_to" ]; then
    ln -sfn "releases/$switch_to" "$app_dir/.current.new" &&
      mv -Tf "$app_dir/.current.new" "$app_dir/current" &&
      : > "$app_dir/releases/$switch_to/.live" &&
      echo "@switched $switch_to" || code=1
  else
    echo "@error missing-release $switch_to"
    code=1
  fi
fi

for id in "$@"; do
  case $id in ''|*/*|.|..) continue ;; esac
  [ "releases/$id" = "$(readlink "$app_dir/current" 2>/dev/null)" ] && continue
  rm -rf "${app_dir:?}/releases/$id" && echo "@pruned $id"
done
for stage in "$app_dir"/releases/.incoming-*; do
  [ -e "$stage" ] && rm -rf "$stage"
done

pulled="$app_dir/cache/pulled"
if [ -n "$clean_repo" ] && [ -s "$pulled" ]; then
  kept=$(sed -n 's/^ *image: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' \
    "$app_dir"/releases/*/compose.yml 2>/dev/null | sort -u)
  sort -u "$pulled" > "$pulled.new"
  while IFS= read -r ref; do
    case $ref in "$clean_repo":*) ;; *) continue ;; esac
    printf '%s\n' "$kept" | grep -qxF "$ref" && continue
    if docker rmi "$ref" >/dev/null 2>&1; then
      echo "@image-removed $ref"
    elif docker image inspect "$ref" >/dev/null 2>&1; then
      continue
    fi
    grep -vxF "$ref" "$pulled.new" > "$pulled.tmp"
    mv -f "$pulled.tmp" "$pulled.new"
  done < "$pulled"
  mv -f "$pulled.new" "$pulled"
fi

printf '%s\n' "$audit" >> "$app_dir/audit.log" || code=1

if [ "$keep" = keep ]; then
  echo "@kept"
elif lock_release "$lock" "$token"; then
  echo "@unlocked"
else
  code=1
fi
exit "$code"
