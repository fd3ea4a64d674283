"""A stand-in for Slack's incoming webhook: an HTTP server on 127.0.0.1 that records what is
posted to it and answers with the status the test chooses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Webhook:
    url: str
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def payloads(self) -> list[Any]:
        return [json.loads(r["body"]) for r in self.requests]


@contextmanager
def webhook(status: int = 200, path: str = "/services/T000/B000/test") -> Iterator[Webhook]:
    """Serve until the block ends; every POST is recorded with its path, headers and body."""
    hook = Webhook(url="", status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            hook.requests.append({"path": self.path, "headers": dict(self.headers),
                                  "body": self.rfile.read(length).decode()})
            body = b"ok" if hook.status < 300 else b"no_service"
            self.send_response(hook.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
