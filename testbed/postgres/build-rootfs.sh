#!/usr/bin/env bash
# Writes a Debian bookworm (minbase) root filesystem with PostgreSQL 15 server and client and
# zstd as a tarball for `docker import`. Downloaded .debs are kept in $CACHE/debs so a rebuild
# does not fetch them again. Runs as root (debootstrap chroots).
# Usage: build-rootfs.sh OUT.tar
set -euo pipefail
out=$1
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${SHIPYARD_TESTBED_CACHE:-/var/cache/shipyard-testbed}
packages=postgresql-15,postgresql-client-15,zstd,ca-certificates

command -v debootstrap >/dev/null || { echo "debootstrap missing: run .ci/install-system.sh" >&2; exit 1; }
mkdir -p "$cache/debs"
work=$(mktemp -d "$cache/rootfs.XXXXXX")
root=$work/root
cleanup() {
  for m in proc sys dev/pts dev; do
    mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m" || true
  done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

debootstrap --variant=minbase --cache-dir="$cache/debs" --include="$packages" \
  bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

# The package's default cluster; the image's entrypoint makes its own in $PGDATA.
rm -rf "$root/etc/postgresql/15/main" "$root/var/lib/postgresql/15"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
pg_uid=$(chroot "$root" id -u postgres)
pg_gid=$(chroot "$root" id -g postgres)
install -d -o "$pg_uid" -g "$pg_gid" -m 3777 "$root/var/run/postgresql"
install -d -o "$pg_uid" -g "$pg_gid" -m 1777 "$root/var/lib/postgresql/data"
install -d -m 755 "$root/docker-entrypoint-initdb.d"

tar --numeric-owner --xattrs -C "$root" -cf "$out.part" .
mv "$out.part" "$out"
