# Removes a deploy lock by hand (`inv lock.release`), for a deploy that died without releasing
# it; records who did so in the audit log.
# Usage: lock_release.sh APP_DIR AUDIT_LINE
set -u
app_dir=$1 audit=$2
lock="$app_dir/lock"
if ! lock_held "$lock"; then
  echo "@free"
  exit 0
fi
if running=$(lock_phase "$lock"); then
  echo "@phase-running ${running#* } ${running%% *}"
  exit 3
fi
lock_break "$lock" || exit 1
printf '%s\n' "$audit" >> "$app_dir/audit.log"
echo "@released"
