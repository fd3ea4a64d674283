# Prints "FILE BYTES" for each dump in the host's backup cache.
# Usage: cache_list.sh CACHE_DIR
set -eu
[ -d "$1" ] || exit 0
find "$1" -maxdepth 1 -name '*.dump.zst' -printf '%f %s\n'
