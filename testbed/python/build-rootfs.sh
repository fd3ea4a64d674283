#!/usr/bin/env bash
# Writes a Debian bookworm (minbase) root filesystem with python3 (3.11), its venv module,
# ca-certificates and passwd (useradd) as a tarball for `docker import`: the test bed's
# stand-in for an official Python image. No wget, no curl, no compiler. Downloaded .debs are
# kept in $CACHE/debs (shared with the PostgreSQL rootfs). Runs as root (debootstrap chroots).
# Usage: build-rootfs.sh OUT.tar
set -euo pipefail
out=$1
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${SHIPYARD_TESTBED_CACHE:-/var/cache/shipyard-testbed}
packages=python3,python3-venv,ca-certificates,passwd

command -v debootstrap >/dev/null || { echo "debootstrap missing: run .ci/install-system.sh" >&2; exit 1; }
mkdir -p "$cache/debs"
work=$(mktemp -d "$cache/rootfs.XXXXXX")
root=$work/root
cleanup() {
  for m in proc sys dev/pts dev; do
    if mountpoint -q "$root/$m" 2>/dev/null; then umount -l "$root/$m" || true; fi
  done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

debootstrap --variant=minbase --cache-dir="$cache/debs" --include="$packages" \
  bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

for tool in wget curl gcc cc; do
  if chroot "$root" sh -c "command -v $tool" >/dev/null 2>&1; then
    echo "build-rootfs: $tool is in the rootfs; the image must not have it" >&2
    exit 1
  fi
done
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +

tar --numeric-owner --xattrs -C "$root" -cf "$out.part" .
mv "$out.part" "$out"
