"""A TCP relay on 127.0.0.1 whose client-to-server direction can be slowed to a byte rate.

Put between a client and the test bed's sshd, it makes a command's upload last as long as a
test needs to interrupt the client in the middle of it, deterministically: `throttle(rate)`
from the moment the upload is known to come next, then wait until the host has started
reading it. The server-to-client direction is never slowed. When either side closes, the
relay closes the other, so the server sees a client that dies as it would without it;
`cut` drops the connections at once, as a runner's network that dies with it would.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Self


class Relay:
    """`Relay(target_port).start()`; `port` is where clients connect instead."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.rate: float | None = None
        self._listener = socket.create_server((host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> Self:
        threading.Thread(target=self._accept, name="relay", daemon=True).start()
        return self

    def throttle(self, rate: float | None) -> None:
        """Slow client-to-server bytes to `rate` per second (None: full speed)."""
        self.rate = rate

    def cut(self) -> None:
        """Drop every connection now, bytes still in flight with it (a network that died)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        self.cut()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                return
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, slowed: bool) -> None:
        try:
            while True:
                rate = self.rate if slowed else None
                data = src.recv(max(1, int(rate / 10)) if rate else 65536)
                if not data:
                    break
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            return
        finally:
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
