#!/usr/bin/env bash
# Installs the system packages the test bed needs (TESTBED.md): sshd, Docker Engine,
# Compose v2 and buildx (from Debian trixie's static plugins), busybox for app images,
# debootstrap for the PostgreSQL and Python images, pgloader for the migration benchmark, a
# container registry with htpasswd for the build-and-ship tests, shellcheck for the lint of
# every shell script.
# Idempotent: each part is skipped when already present.
set -euo pipefail

need=()
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v dockerd >/dev/null || need+=(docker.io)
# The app image copies /bin/busybox into a scratch rootfs: it must be the static build (with nc).
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' \
  && /bin/busybox --list 2>/dev/null | grep -qx nc || need+=(busybox-static)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v iptables >/dev/null || need+=(iptables)
# The Swarm test bed: network namespaces, veth pairs and a bridge (ip), nsenter and unshare.
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null && command -v unshare >/dev/null || need+=(util-linux)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v pgloader >/dev/null || need+=(pgloader)
# The test bed's container registry (distribution 2.8) and its htpasswd (bcrypt) file.
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v psql >/dev/null || need+=(postgresql-client)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
command -v shellcheck >/dev/null || need+=(shellcheck)

if [ ${#need[@]} -gt 0 ]; then
  echo "install-system: apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

plugin_dir="${HOME}/.docker/cli-plugins"
# Copies the Docker CLI plugin $1 out of Debian trixie's package $1 (a static binary) into
# $plugin_dir, through a private apt sources list (the system's stays bookworm).
install_trixie_plugin() {
  local package=$1 work
  echo "install-system: $package plugin from Debian trixie"
  work=$(mktemp -d)
  mkdir -p "$work/etc/apt/sources.list.d" "$work/etc/apt/preferences.d" "$work/var/lib/apt/lists/partial" \
           "$work/var/cache/apt/archives/partial" "$work/var/lib/dpkg"
  touch "$work/var/lib/dpkg/status"
  echo "deb http://deb.debian.org/debian trixie main" > "$work/etc/apt/sources.list"
  local opts=(-o "Dir::Etc=$work/etc/apt" -o "Dir::State=$work/var/lib/apt" -o "Dir::Cache=$work/var/cache/apt"
        -o "Dir::State::status=$work/var/lib/dpkg/status" -o "Debug::NoLocking=1"
        -o "Acquire::Check-Valid-Until=false" -o "Dir::Etc::trusted=/etc/apt/trusted.gpg"
        -o "Dir::Etc::trustedparts=/etc/apt/trusted.gpg.d" -o "APT::Sandbox::User=root")
  apt-get "${opts[@]}" update -qq
  (cd "$work" && apt-get "${opts[@]}" download "$package" >/dev/null)
  dpkg -x "$work/${package}"_*.deb "$work/x"
  mkdir -p "$plugin_dir"
  cp "$work/x/usr/libexec/docker/cli-plugins/$package" "$plugin_dir/$package"
  chmod 755 "$plugin_dir/$package"
  rm -rf "$work"
}

docker compose version >/dev/null 2>&1 || install_trixie_plugin docker-compose
# BuildKit builds of the example app's Dockerfile (the docker CLI refuses them without buildx).
docker buildx version >/dev/null 2>&1 || install_trixie_plugin docker-buildx
docker compose version
docker buildx version
