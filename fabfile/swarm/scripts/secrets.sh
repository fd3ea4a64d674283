# Creates the release's Docker secrets that do not exist yet. Stdin has one `NAME BASE64`
# line per secret; a value goes from stdin through a pipe into `docker secret create`: never
# into a file, an argument or the output. Secrets are labelled with the stack, so that
# `docker stack rm` and the stack phase's pruning find them.
# Usage: secrets.sh STACK < NAME-VALUE LINES
# shellcheck shell=sh
set -u
stack=$1
code=0
while read -r name value; do
  [ -n "$name" ] || continue
  if docker secret inspect "$name" >/dev/null 2>&1; then
    continue
  fi
  if err=$(printf '%s' "$value" | base64 -d | docker secret create \
      --label "com.docker.stack.namespace=$stack" "$name" - 2>&1 >/dev/null); then
    echo "@created $name"
  else
    echo "@error secret $name $err"
    code=1
  fi
done
exit "$code"
