#!/usr/bin/env bash
# Writes a fresh Debian 13 (trixie, minbase) VPS as a tarball: OpenSSH server, sudo and
# nothing of Docker, for the test of `inv setup --install` on a host where the engine is
# first absent (tests/support/vps.py runs it in a network namespace). Downloaded .debs are
# kept in $CACHE/debs-trixie. Runs as root (debootstrap chroots).
# Usage: build-rootfs.sh OUT.tar
set -euo pipefail
out=$1
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${SHIPYARD_TESTBED_CACHE:-/var/cache/shipyard-testbed}
packages=openssh-server,sudo,procps

command -v debootstrap >/dev/null || { echo "debootstrap missing: run .ci/install-system.sh" >&2; exit 1; }
mkdir -p "$cache/debs-trixie"
work=$(mktemp -d "$cache/rootfs.XXXXXX")
root=$work/root
cleanup() {
  for m in proc sys dev/pts dev; do
    if mountpoint -q "$root/$m" 2>/dev/null; then umount -l "$root/$m" || true; fi
  done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

debootstrap --variant=minbase --cache-dir="$cache/debs-trixie" --include="$packages" \
  trixie "$root" "$mirror" > "$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}
if chroot "$root" sh -c 'command -v docker || command -v dockerd' >/dev/null 2>&1; then
  echo "build-rootfs: Docker is in the rootfs; the host must start without it" >&2
  exit 1
fi
rm -f "$root"/etc/ssh/ssh_host_*
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +

tar --numeric-owner --xattrs -C "$root" -cf "$out.part" .
mv "$out.part" "$out"
