"""A small HTTP forward proxy for apt inside a network namespace host, which has no route to
the Debian mirror: apt sends `GET http://deb.debian.org/...` to it, it fetches the file and
passes it back. Only the Debian mirror is reachable through it (TESTBED.md: Debian's
packages are one of the registries these machines reach)."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

ALLOWED = frozenset({"deb.debian.org"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                        "te", "trailer", "upgrade", "proxy-authenticate", "proxy-authorization"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_HEAD(self) -> None:
        self._forward()

    def do_GET(self) -> None:
        self._forward()

    def _forward(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.scheme != "http" or url.hostname not in ALLOWED:
            self.send_error(403, f"only {', '.join(sorted(ALLOWED))} over http")
            return
        path = url.path + (f"?{url.query}" if url.query else "")
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
        try:
            conn.request(self.command, path, headers={
                k: v for k, v in self.headers.items()
                if k.lower() not in HOP_BY_HOP and k.lower() != "host"})
            resp = conn.getresponse()
            body = resp.read()
        except OSError as exc:
            self.send_error(502, f"upstream: {exc}")
            return
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class AptProxy:
    """Serves on `address`:`port` (a free one) until `stop()`."""

    def __init__(self, address: str) -> None:
        self.server = ThreadingHTTPServer((address, 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
