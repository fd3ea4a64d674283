# Writes stdin to PATH atomically with MODE (octal): a temp file in the same directory, then
# mv, so a reader never sees half a file and a failed upload leaves nothing behind.
# Usage: put.sh PATH MODE  < content
set -eu
umask 077
mkdir -p "$(dirname "$1")"
tmp="$1.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
chmod "$2" "$tmp"
mv -f "$tmp" "$1"
trap - EXIT
