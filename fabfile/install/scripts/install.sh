# Installs Docker Engine and the Compose v2 plugin from the distribution's own packages on a
# Debian or Ubuntu host, idempotently; runs as root. Nothing is installed unless everything
# can be: the packages' candidate versions are checked first (Engine >= MIN_DOCKER, Compose
# >= MIN_COMPOSE; Compose is taken from docker-compose-plugin, docker-compose-v2 or
# docker-compose, whichever apt offers recent enough). Then USER joins the `docker` group and
# the service is enabled and started (systemd, else the init script). One marker per change.
# Usage: install.sh USER MIN_DOCKER MIN_COMPOSE
set -u
user=$1 min_docker=$2 min_compose=$3
export DEBIAN_FRONTEND=noninteractive

# at_least VERSION MINIMUM: whether VERSION (1:2.26.1-4, 20.10.24+dfsg1) is MINIMUM (2.20)
# or newer, by major and minor.
at_least() {
  printf '%s %s\n' "$1" "$2" | sed 's/^[0-9]*://' | awk '{
    split($1, v, /[^0-9]+/); split($2, m, /[^0-9]+/)
    exit !(v[1] + 0 > m[1] + 0 || (v[1] + 0 == m[1] + 0 && v[2] + 0 >= m[2] + 0))
  }'
}

# candidate PACKAGE: the version apt would install, empty when it offers none.
candidate() {
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}'
}

# release: the distribution, e.g. "Debian GNU/Linux 12 (bookworm)".
release() {
  # shellcheck source=/dev/null  # the host's own file
  (. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}") || echo unknown
}

compose_now() {
  docker compose version --short 2>/dev/null
}

echo "@release $(release)"
# shellcheck source=/dev/null  # the host's own file
if ! (. /etc/os-release 2>/dev/null && case " ${ID:-} ${ID_LIKE:-} " in
      *" debian "*|*" ubuntu "*) exit 0 ;; *) exit 1 ;; esac) || ! command -v apt-get >/dev/null; then
  echo "@error unsupported"
  exit 3
fi

packages=
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  need_engine=1
else
  need_engine=0
fi
have=$(compose_now)
if [ -n "$have" ] && at_least "$have" "$min_compose"; then need_compose=0; else need_compose=1; fi

if [ "$need_engine" = 1 ] || [ "$need_compose" = 1 ]; then
  if ! out=$(apt-get update -q 2>&1); then
    echo "@error apt-update $(printf '%s' "$out" | grep -E '^(E|Err):' | tail -n 1)"
    exit 5
  fi
  if [ "$need_engine" = 1 ]; then
    engine=$(candidate docker.io)
    if [ -z "$engine" ] || ! at_least "$engine" "$min_docker"; then
      echo "@error engine-too-old docker.io=${engine:-none}"
      exit 4
    fi
    packages="docker.io"
    [ -n "$(candidate docker-cli)" ] && packages="$packages docker-cli"
  fi
  if [ "$need_compose" = 1 ]; then
    picked='' offered=''
    for pkg in docker-compose-plugin docker-compose-v2 docker-compose; do
      version=$(candidate "$pkg")
      [ -n "$version" ] || continue
      if at_least "$version" "$min_compose"; then
        picked=$pkg
        break
      fi
      offered="$offered $pkg=$version"
    done
    if [ -z "$picked" ]; then
      echo "@error compose-too-old${offered:- none}"
      exit 4
    fi
    packages="$packages $picked"
  fi
  # shellcheck disable=SC2086  # the package list splits on purpose
  if ! out=$(apt-get install -y -q --no-install-recommends $packages 2>&1); then
    printf '%s\n' "$out" | tail -n 8 | sed 's/^/@log /'
    echo "@error apt-install $packages"
    exit 5
  fi
  for pkg in $packages; do
    echo "@installed $pkg $(dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null)"
  done
fi

getent group docker >/dev/null || { groupadd --system docker && echo "@created group docker"; }
if [ "$user" != root ] && ! id -nG "$user" 2>/dev/null | tr ' ' '\n' | grep -qx docker; then
  if usermod -aG docker "$user"; then
    echo "@group-added $user"
  else
    echo "@error usermod $user"
    exit 6
  fi
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  if ! systemctl is-enabled --quiet docker 2>/dev/null; then
    systemctl enable docker >/dev/null 2>&1 && echo "@enabled docker (systemd)"
  fi
  if ! systemctl is-active --quiet docker 2>/dev/null; then
    systemctl start docker && echo "@started docker (systemd)"
  fi
elif ! docker version >/dev/null 2>&1; then
  service docker start >/dev/null 2>&1 && echo "@started docker (init script)"
fi
tries=0
until docker version >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "@error daemon $(docker version 2>&1 | tail -n 1)"
    exit 7
  fi
  sleep 0.5
done
echo "@ready"
