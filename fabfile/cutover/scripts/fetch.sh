# Streams the snapshot PATH to stdout, then removes its directory (made by snapshot.sh).
# Usage: fetch.sh PATH
cat -- "$1"
code=$?
rm -rf -- "$(dirname "$1")"
exit "$code"
