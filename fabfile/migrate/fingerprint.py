"""Per-table fingerprints of a SQLite file: a hash of the pages of each table's b-tree.

Two online backups of the same live database (`sqlite3_backup`, which copies pages as they
are) hold a table's pages byte for byte alike until something writes to that table; pages
alike mean rows alike, whatever the values. So a table whose fingerprint did not move
between a rehearsal's snapshot and the final one needs no second preflight: what the first
rendered and hashed is what the second would (`engine.Reuse`). Anything that moves pages
(a write, VACUUM, auto-vacuum) changes the fingerprint, and the table is checked again.

SQLite's `dbstat` table lists the pages of each b-tree (overflow pages included); a build
without it gives no fingerprints, so nothing is reused.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from .sqlite_schema import open_readonly


def tables(path: Path) -> dict[str, str]:
    """b-tree name (a table or an index) -> sha256 of its pages in page order; empty when
    the file has a write-ahead log beside it (pages there are not in the file) or SQLite
    has no `dbstat`."""
    if Path(f"{path}-wal").exists():
        return {}
    conn = open_readonly(path)
    try:
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        try:
            rows = conn.execute("SELECT name, pageno FROM dbstat ORDER BY name, pageno"
                                ).fetchall()
        except sqlite3.OperationalError:
            return {}
    finally:
        conn.close()
    pages: dict[str, list[int]] = {}
    for name, pageno in rows:
        pages.setdefault(str(name), []).append(int(pageno))
    out = {}
    with path.open("rb") as fh:
        for name, numbers in pages.items():
            digest = hashlib.sha256()
            for n in numbers:
                fh.seek((n - 1) * page_size)
                digest.update(n.to_bytes(8, "big"))
                digest.update(fh.read(page_size))
            out[name] = digest.hexdigest()
    return out
