"""The host's audit trail: `APP_DIR/audit.log`, one JSON object per line, appended by
`finish.sh` (deploys, rollbacks, maintenance, what a run finished for one that died),
`lock_release.sh`, `lock.sh` (a stale lock taken over) and `inv exec` (who runs what, before
it runs), read back by `inv status` (its last line that is not an exec)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fabfile.config.secrets import redact

RESULTS = ("success", "no-change", "failed", "rolled-back", "interrupted", "cancelled",
           "released", "taken-over", "started")


def record(*, action: str, result: str, env: str, who: str, version: str = "",
           release: str | None = None, previous: str | None = None, seconds: float = 0.0,
           message: str = "", now: datetime | None = None) -> str:
    """One audit line (JSON, no newline, secrets redacted)."""
    assert result in RESULTS, result
    data = {
        "time": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "action": action,
        "result": result,
        "env": env,
        "version": version,
        "release": release,
        "previous": previous,
        "who": who,
        "seconds": round(seconds, 1),
        "message": redact(message)[:500],
    }
    return json.dumps(data, sort_keys=True, ensure_ascii=True)


def summary(entry: dict[str, Any] | None) -> str:
    """`2024-05-01T10:00:00Z deploy v2 success by alice@laptop (41.2s)` or `none`."""
    if not entry:
        return "none"
    text = (f"{entry.get('time', '?')} {entry.get('action', '?')} {entry.get('version', '')} "
            f"{entry.get('result', '?')} by {entry.get('who', '?')}")
    if entry.get("seconds"):
        text += f" ({entry['seconds']}s)"
    if entry.get("message"):
        text += f": {entry['message']}"
    return text
