"""A loopback TCP forwarder that a test can switch off (cutting every connection) and on.

Put between ivrdesk and PostgreSQL, it makes the database unreachable for ivrdesk
alone, without touching the shared cluster: while off, every existing connection is
closed and every new one is accepted and closed at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    """Forward 127.0.0.1:<port> to a target address while switched on."""

    def __init__(self, target: tuple[str, int]) -> None:
        """Listen on a free loopback port; nothing is forwarded before start()."""
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._on = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self.refused = 0

    def start(self) -> TcpProxy:
        """Start accepting connections."""
        self._thread.start()
        return self

    def switch_off(self) -> None:
        """Cut every open connection and refuse new ones until switched on."""
        with self._lock:
            self._on = False
            sockets, self._open = self._open, set()
        for sock in sockets:
            _close(sock)

    def switch_on(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._on = True

    def close(self) -> None:
        """Stop accepting and cut everything."""
        self._stop.set()
        self.switch_off()
        self._thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        """Accept connections until closed; forward them while on, drop them while off."""
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                on = self._on
            if not on:
                self.refused += 1
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy one direction of a connection until either side closes."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    """Shut a socket down (waking any thread blocked on it) and close it."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
