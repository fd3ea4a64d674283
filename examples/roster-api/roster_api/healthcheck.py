"""`python -m roster_api.healthcheck`: exit 0 when this container's /health answers 200.

A container healthcheck without curl or wget: standard library only, so it starts fast.
Exits 1 with the reason on stderr otherwise (Docker keeps the last lines in its health log).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT = 3.0


def main() -> int:
    port = os.environ.get("PORT", "").strip() or "8000"
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"{url}: {exc.code} {exc.read(300).decode(errors='replace')}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
