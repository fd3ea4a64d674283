# A consistent copy of the live SQLite file SRC with SQLite's online backup API, opened
# read-only, into a fresh directory under WORK_PARENT. Prints "@snapshot PATH BYTES SHA256 TOOL".
# Usage: snapshot.sh SRC WORK_PARENT
set -u
src=$1 parent=$2
[ -f "$src" ] || { echo "@error missing"; exit 3; }
[ -r "$src" ] || { echo "@error unreadable"; exit 3; }
if command -v python3 >/dev/null 2>&1 && python3 -c 'import sqlite3' >/dev/null 2>&1; then
  tool=python3
elif command -v sqlite3 >/dev/null 2>&1; then
  tool=sqlite3
else
  echo "@error no-tool"
  exit 4
fi
if ! mkdir -p "$parent" || ! dir=$(mktemp -d "$parent/.sqlite-snapshot.XXXXXX"); then
  echo "@error workdir"
  exit 5
fi
dst="$dir/snapshot.db"
if [ "$tool" = python3 ]; then
  python3 - "$src" "$dst" 2>"$dir/err" <<'PY'
import sqlite3, sys, urllib.parse
src = sqlite3.connect("file:" + urllib.parse.quote(sys.argv[1]) + "?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.execute("PRAGMA journal_mode=DELETE")
dst.close()
src.close()
PY
else
  sqlite3 -readonly "$src" ".backup $dst" 2>"$dir/err" &&
    sqlite3 "$dst" "PRAGMA journal_mode=DELETE;" >/dev/null 2>>"$dir/err"
fi
code=$?
if [ "$code" -ne 0 ]; then
  echo "@error backup $(tail -n 3 "$dir/err" | tr '\n' ' ')"
  rm -rf "$dir"
  exit 6
fi
echo "@snapshot $dst $(wc -c < "$dst" | tr -d ' ') $(sha256sum < "$dst" | cut -d' ' -f1) $tool"
