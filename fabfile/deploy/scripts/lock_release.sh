# Removes a deploy lock by hand (`inv lock.release`), for a deploy that died without releasing
# it; records who did so in the audit log.
# Usage: lock_release.sh APP_DIR AUDIT_LINE
set -u
app_dir=$1 audit=$2
lock="$app_dir/lock"
if [ ! -d "$lock" ]; then
  echo "@free"
  exit 0
fi
if [ -f "$lock/phase.pid" ]; then
  read -r pid name < "$lock/phase.pid"
  if kill -0 "$pid" 2>/dev/null; then
    echo "@phase-running $name $pid"
    exit 3
  fi
fi
rm -rf "$lock" || exit 1
printf '%s\n' "$audit" >> "$app_dir/audit.log"
echo "@released"
