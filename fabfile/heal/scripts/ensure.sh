# Starts the app's self-healing watcher unless it is running (its flock on
# APP_DIR/heal/watch.lock is held): APP_DIR/heal/watch.sh with the arguments in
# APP_DIR/heal/args (one a line), detached in its own session. Installed as
# APP_DIR/heal/ensure.sh; cron runs it every minute (so a reboot or a crash costs at most a
# minute of watching), install.sh after each install. With `foreground` (a systemd unit)
# it becomes the watcher instead.
# Usage: ensure.sh APP_DIR [foreground]
set -u
dir="$1/heal" mode=${2:-}
if [ ! -f "$dir/watch.sh" ] || [ ! -f "$dir/args" ]; then
  echo "@error not-installed $dir"
  exit 1
fi
if ! flock -n "$dir/watch.lock" true; then
  echo "@running $(cat "$dir/pid" 2>/dev/null)"
  exit 0
fi
nl='
'
args=$(cat "$dir/args")
old=$IFS
IFS=$nl
set -f
# shellcheck disable=SC2086  # one argument a line
set -- $args
set +f
IFS=$old
cd / || exit 1
if [ "$mode" = foreground ]; then
  exec sh "$dir/watch.sh" "$@"
fi
rm -f "$dir/pid"
setsid sh "$dir/watch.sh" "$@" </dev/null >>"$dir/watch.log" 2>&1 &
tries=0
until [ -s "$dir/pid" ] || [ "$tries" -ge 50 ]; do
  sleep 0.1
  tries=$((tries + 1))
done
pid=$(cat "$dir/pid" 2>/dev/null)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  echo "@started $pid"
else
  echo "@error not-started $(tail -n 3 "$dir/watch.log" 2>/dev/null | tr '\n' ' ')"
  exit 1
fi
