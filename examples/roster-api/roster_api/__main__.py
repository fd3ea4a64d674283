"""`python -m roster_api`: serve the app with uvicorn (the image's CMD).

The environment is checked first, so a mistake is one `error:` message and exit code 2
rather than a traceback per worker. Listens on 0.0.0.0:PORT with WEB_CONCURRENCY worker
processes. On SIGTERM uvicorn stops accepting connections, lets in-flight requests finish
for up to SHUTDOWN_TIMEOUT seconds (25: below the deploy's 30 s stop grace period), then
exits.
"""

from __future__ import annotations

import sys

import uvicorn

from .config import ConfigError, Settings


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        "roster_api.main:create_app",
        factory=True,
        host="0.0.0.0",  # noqa: S104 - inside a container, reached through its network
        port=settings.port,
        workers=settings.web_concurrency,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        log_level=settings.log_level,
        proxy_headers=True,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
