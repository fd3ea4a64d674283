#!/usr/bin/env bash
# Writes the fake app's root filesystem as a tarball for `docker import`:
# a static busybox with a symlink per applet in /bin, and the scripts of this folder in /app.
# Usage: build-rootfs.sh OUT.tar
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
busybox=${BUSYBOX:-/bin/busybox}
"$busybox" --list | grep -qx nc || { echo "$busybox has no nc applet: run .ci/install-system.sh" >&2; exit 1; }

root=$(mktemp -d /tmp/shipyard-app-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,app,root,tmp,var/run}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
ln -s /bin/env "$root/usr/bin/env"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
install -m 755 "$here/serve" "$here/handle" "$here/migrate" "$root/app/"
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$root" -cf "$out" .
