# Installs, updates or removes the app's self-healing watcher on this host, idempotently, as
# the deploy user (no sudo, no socket handed to a container).
# install: writes APP_DIR/heal/{watch.sh,ensure.sh,args,fingerprint} and the Slack webhook
#   URL read from stdin into APP_DIR/heal/slack_webhook (mode 600; removed when stdin is
#   empty); registers the watcher with the host's supervisor: a systemd user unit when this
#   user's systemd instance lingers (runs without a login, survives reboots), else a crontab
#   line running ensure.sh every minute, else none (it runs until the next reboot); restarts
#   a watcher started with another FINGERPRINT and starts it unless it runs.
# remove: stops the watcher, removes its unit or crontab line and APP_DIR/heal.
# Prints `@supervisor`, `@started`/`@running`/`@stopped`, `@removed` or `@error WHAT`.
# Usage: install.sh install|remove APP_DIR FINGERPRINT WATCH_BODY ENSURE_BODY [ARG...]
set -u
mode=$1 app_dir=$2 fingerprint=$3 watch=$4 ensure=$5
shift 5
dir="$app_dir/heal"
unit="shipyard-heal-$(printf '%s' "$app_dir" | sha256sum | cut -c1-12).service"
unit_file="${XDG_CONFIG_HOME:-${HOME:-/nonexistent}/.config}/systemd/user/$unit"
tag="# shipyard-heal $app_dir"
line="* * * * * /bin/sh $dir/ensure.sh $app_dir >/dev/null 2>&1 $tag"

for tool in flock setsid; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "@error missing $tool"
    exit 1
  fi
done

# stop: end the running watcher (its whole process group), waiting for its lock to be free.
stop() {
  pid=$(cat "$dir/pid" 2>/dev/null)
  [ -n "$pid" ] && ! flock -n "$dir/watch.lock" true 2>/dev/null || return 0
  kill -s TERM -- "-$pid" 2>/dev/null
  tries=0
  until flock -n "$dir/watch.lock" true 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 50 ]; then
      kill -s KILL -- "-$pid" 2>/dev/null
      break
    fi
    sleep 0.1
  done
  echo "@stopped $pid"
}

lingering() {
  command -v systemctl >/dev/null 2>&1 && systemctl --user show-environment >/dev/null 2>&1 &&
    [ "$(loginctl show-user "$(id -un)" -p Linger --value 2>/dev/null)" = yes ]
}

# others: the crontab lines on stdin that are not this app's (they end with another tag).
others() {
  awk -v tag="$tag" 'length($0) < length(tag) || substr($0, length($0) - length(tag) + 1) != tag'
}

# unsupervise: remove this app's systemd unit and crontab line, whichever exist.
unsupervise() {
  if [ -f "$unit_file" ]; then
    systemctl --user disable --now "$unit" >/dev/null 2>&1
    rm -f "$unit_file"
    systemctl --user daemon-reload >/dev/null 2>&1
  fi
  if command -v crontab >/dev/null 2>&1; then
    table=$(crontab -l 2>/dev/null)
    if [ "$(printf '%s\n' "$table" | others)" != "$table" ]; then
      printf '%s\n' "$table" | others | crontab -
    fi
  fi
}

# put FILE MODE: stdin into FILE atomically with MODE.
put() {
  (umask 077 && cat > "$1.tmp") && chmod "$2" "$1.tmp" && mv -f "$1.tmp" "$1"
}

if [ "$mode" = remove ]; then
  [ -d "$dir" ] || { echo "@removed none"; exit 0; }
  unsupervise
  stop
  rm -rf "$dir"
  echo "@removed $dir"
  exit 0
fi

if ! mkdir -p "$dir"; then
  echo "@error mkdir $dir"
  exit 1
fi
webhook=$(cat)
if [ -n "$webhook" ]; then
  printf '%s\n' "$webhook" | put "$dir/slack_webhook" 600 || { echo "@error write"; exit 1; }
else
  rm -f "$dir/slack_webhook"
fi
previous=$(cat "$dir/fingerprint" 2>/dev/null)
{ printf '%s\n' "$watch" | put "$dir/watch.sh" 644 &&
  printf '%s\n' "$ensure" | put "$dir/ensure.sh" 644 &&
  printf '%s\n' "$@" | put "$dir/args" 644 &&
  printf '%s\n' "$fingerprint" | put "$dir/fingerprint" 644; } || { echo "@error write"; exit 1; }

if lingering; then
  supervisor=systemd
elif command -v crontab >/dev/null 2>&1; then
  supervisor=cron
else
  supervisor=none
fi
changed=
[ "$previous" = "$fingerprint" ] || changed=1
if [ "$(cat "$dir/supervisor" 2>/dev/null)" != "$supervisor" ]; then
  unsupervise
  changed=1
fi
echo "$supervisor" | put "$dir/supervisor" 644
echo "@supervisor $supervisor"
[ -z "$changed" ] || stop

case $supervisor in
  systemd)
    printf '[Unit]\nDescription=shipyard self-healing watcher of %s\n\n[Service]\nExecStart=/bin/sh %s/ensure.sh %s foreground\nRestart=always\nRestartSec=5\n\n[Install]\nWantedBy=default.target\n' \
      "$app_dir" "$dir" "$app_dir" | { mkdir -p "${unit_file%/*}" && put "$unit_file" 644; }
    if ! { systemctl --user daemon-reload && systemctl --user enable "$unit" &&
        systemctl --user "$([ -n "$changed" ] && echo restart || echo start)" "$unit"; } \
        >/dev/null 2>&1; then
      echo "@error systemd $unit"
      exit 1
    fi
    echo "@started systemd $unit"
    exit 0 ;;
  cron)
    table=$(crontab -l 2>/dev/null)
    if ! printf '%s\n' "$table" | grep -qxF "$line"; then
      { [ -z "$table" ] || printf '%s\n' "$table" | others; printf '%s\n' "$line"; } |
        crontab - || { echo "@error crontab"; exit 1; }
    fi ;;
esac
sh "$dir/ensure.sh" "$app_dir"
