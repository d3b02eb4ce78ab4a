"""A TCP proxy the fault suite controls: it forwards until told to black-hole, then holds every byte and every new
connection without closing anything (a stalled network path, the case where a socket waits forever), and forwards
again when the hole closes."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator


class Blackhole:
    """Listens on a free loopback port and forwards to `target` (host, port)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.open = threading.Event()  # set: forwarding; clear: holding
        self.open.set()
        self.closed = threading.Event()
        self.sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, name="blackhole-accept", daemon=True).start()

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Black-holes the path for the duration of the block."""
        self.open.clear()
        try:
            yield
        finally:
            self.open.set()

    def close(self) -> None:
        self.closed.set()
        self.open.set()
        self.listener.close()
        for sock in list(self.sockets):
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name="blackhole-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self.sockets.add(client)
        self.open.wait()  # a connection made during the outage reaches the server only once it ends
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        self.sockets.add(upstream)
        peers = {client: upstream, upstream: client}
        # A selector, not select.select: select() refuses descriptors past 1023, and a test process that has run
        # the e2e suite first holds that many, so every connection made after a restart died at once (CI).
        selector = selectors.DefaultSelector()
        try:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            while not self.closed.is_set():
                self.open.wait()
                for key, _ in selector.select(timeout=0.2):
                    if not self.open.is_set():
                        break  # the hole opened while we waited: the bytes stay in the kernel's buffers
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            for sock in peers:
                self.sockets.discard(sock)
                with contextlib.suppress(OSError):
                    sock.close()
