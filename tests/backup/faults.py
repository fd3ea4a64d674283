"""Faults the backup tests inject: an S3 front that cuts uploads halfway, or holds them
halfway until its client goes away, and fake old clients."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import stat
import struct
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.support.docker import docker
from tests.support.images import POSTGRES_TAG, image_labels


class _Handler(socketserver.BaseRequestHandler):
    server: CuttingProxy

    def handle(self) -> None:
        client: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                return
            head += chunk
        header, _, body = head.partition(b"\r\n\r\n")
        method, target = header.split(b" ", 2)[:2]
        query = parse_qs(urlsplit(target.decode()).query)
        upstream = socket.create_connection(("127.0.0.1", self.server.upstream_port))
        cut = method == b"PUT" and self.server.should_cut(query)
        try:
            if cut and self.server.hold:
                self.server.stalled.set()
                _until_gone(client)
                self.server.gone.set()
                return
            if cut:
                length = next((int(line.split(b":", 1)[1]) for line in header.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                upstream.sendall(header + b"\r\n\r\n")
                sent = 0
                while sent < length // 2:
                    data = body or client.recv(65536)
                    body = b""
                    if not data:
                        break
                    upstream.sendall(data[: length // 2 - sent])
                    sent += len(data)
                self.server.cuts += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            upstream.sendall(head)
            _pump(client, upstream)
        finally:
            upstream.close()
            client.close()


def _until_gone(client: socket.socket) -> None:
    """Read (and drop) what the client sends, never answer, until it closes the connection."""
    client.settimeout(1.0)
    while True:
        try:
            if not client.recv(65536):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def _pump(a: socket.socket, b: socket.socket) -> None:
    def one_way(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=one_way, args=(b, a), daemon=True)
    other.start()
    one_way(a, b)
    other.join(30)


class CuttingProxy(socketserver.ThreadingTCPServer):
    """Forwards to the S3 server on `upstream_port`, but drops the connection halfway through
    the body of every PUT of part `part` of a multipart upload (or of every single PUT when
    `part` is 0); with `hold`, it takes that PUT's body and never answers instead."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream_port: int, part: int, *, hold: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream_port = upstream_port
        self.part = part
        self.cuts = 0
        self.hold = hold
        self.stalled = threading.Event()
        """With `hold`: set once such a PUT is held (never answered)."""
        self.gone = threading.Event()
        """With `hold`: set once the client of a held PUT closed its connection."""
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def should_cut(self, query: dict[str, list[str]]) -> bool:
        if self.part == 0:
            return "uploadId" not in query
        return query.get("partNumber") == [str(self.part)]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> CuttingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


OLD_CLIENT_IMAGE = "shipyard-test/pg-client-old:14"
FAKE_PG_DUMP = "#!/bin/sh\necho 'pg_dump (PostgreSQL) 14.11'\n"


def old_client_image(tmp: Path) -> str:
    """`postgres:15` whose pg_dump says it is 14.11: a client older than the test server."""
    if image_labels(OLD_CLIENT_IMAGE):
        return OLD_CLIENT_IMAGE
    ctx = tmp / "old-client"
    ctx.mkdir(parents=True, exist_ok=True)
    _executable(ctx / "pg_dump", FAKE_PG_DUMP)
    (ctx / "Dockerfile").write_text(
        f"FROM {POSTGRES_TAG}\nCOPY pg_dump /opt/old/pg_dump\n"
        "ENV PATH=/opt/old:/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:"
        "/usr/sbin:/usr/bin:/sbin:/bin\n")
    docker("build", "-q", "-t", OLD_CLIENT_IMAGE, str(ctx), env={"DOCKER_BUILDKIT": "0"})
    return OLD_CLIENT_IMAGE


def old_client_bin_dir(tmp: Path) -> Path:
    """A directory that plays /usr/lib/postgresql/14/bin: pg_dump 14.11, the real psql."""
    bin_dir = tmp / "pg14-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    _executable(bin_dir / "pg_dump", FAKE_PG_DUMP)
    (bin_dir / "psql").symlink_to("/usr/lib/postgresql/15/bin/psql")
    return bin_dir


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
