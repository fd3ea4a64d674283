# Before `inv exec` runs a command on this host: the current release must exist and Docker
# answer; with MODE=reuse, pick the running web container to run it in (a healthy one
# first). Then append AUDIT_LINE to the audit log: who runs what, before it runs.
# Usage: prepare.sh APP_DIR PROJECT SERVICE MODE AUDIT_LINE
set -u
app_dir=$1 project=$2 service=$3 mode=$4 audit=$5
if ! out=$(docker version --format '{{.Server.Version}}' 2>&1); then
  echo "@error docker $(printf '%s' "$out" | tail -n 1)"
  exit 1
fi
current=$(readlink "$app_dir/current" 2>/dev/null)
if [ -z "$current" ] || [ ! -f "$app_dir/current/compose.yml" ]; then
  echo "@error no-current"
  exit 1
fi
echo "@current ${current#releases/}"
if [ "$mode" = reuse ]; then
  web() {
    docker ps -q --no-trunc --filter "label=com.docker.compose.project=$project" \
      --filter "label=com.docker.compose.service=$service" \
      --filter "label=com.docker.compose.oneoff=False" "$@" | head -n 1
  }
  id=$(web --filter health=healthy)
  [ -n "$id" ] || id=$(web --filter status=running)
  if [ -z "$id" ]; then
    echo "@error no-web"
    exit 1
  fi
  echo "@container $id"
fi
printf '%s\n' "$audit" >> "$app_dir/audit.log" || { echo "@error audit"; exit 1; }
echo "@ready"
