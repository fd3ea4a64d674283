"""A TLS server on 127.0.0.1 that picks its certificate by SNI, as Traefik does per router.

Standard library only, so it also runs as a separate process under another name:

    python tlsserve.py --port 443 --cert C --key K [--sni NAME=CERT,KEY ...] [--seconds 120]
                       [--process-name traefik]

The doctor's test bed starts it that way as `traefik` (Traefik itself cannot run here): the
doctor judges who holds 443 by the process name, and the certificates by the handshake.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol


class CertPair(Protocol):
    @property
    def cert(self) -> Path: ...

    @property
    def key(self) -> Path: ...


def server_context(pem: CertPair) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem.cert, pem.key)
    return context


class TlsServer:
    """Completes the handshake, answers one HTTP line and closes each connection.

    The accept loop wakes every 0.1 s to see whether it should stop, so it ends within that.
    """

    def __init__(self, default: CertPair, by_name: Mapping[str, CertPair] | None = None,
                 port: int = 0) -> None:
        self.default = server_context(default)
        self.by_name = {name: server_context(pem) for name, pem in (by_name or {}).items()}
        self.default.sni_callback = self._pick
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.handshakes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.serve, daemon=True)

    def _pick(self, tls: ssl.SSLObject | ssl.SSLSocket, name: str | None,
              context: ssl.SSLContext) -> None:
        if name in self.by_name:
            tls.context = self.by_name[name]

    def serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            with contextlib.suppress(OSError), conn, \
                    self.default.wrap_socket(conn, server_side=True) as tls:
                self.handshakes += 1
                tls.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

    def stop(self) -> None:
        self._stop.set()

    def __enter__(self) -> TlsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@contextlib.contextmanager
def tls_server(default: CertPair, by_name: Mapping[str, CertPair] | None = None,
               port: int = 0) -> Iterator[TlsServer]:
    with TlsServer(default, by_name, port) as server:
        yield server


class _Files:
    def __init__(self, cert: str, key: str) -> None:
        self.cert = Path(cert)
        self.key = Path(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--sni", action="append", default=[], metavar="NAME=CERT,KEY")
    parser.add_argument("--seconds", type=float, default=120.0, help="exit after this long")
    parser.add_argument("--process-name", help="the name `ps` and `ss` show (Linux comm)")
    args = parser.parse_args()
    if args.process_name:
        Path("/proc/self/comm").write_text(args.process_name)
    by_name = {}
    for item in args.sni:
        name, _, files = item.partition("=")
        cert, _, key = files.partition(",")
        by_name[name] = _Files(cert, key)
    server = TlsServer(_Files(args.cert, args.key), by_name, args.port)
    deadline = time.monotonic() + args.seconds
    with server:
        while time.monotonic() < deadline:
            time.sleep(0.2)


if __name__ == "__main__":
    main()
