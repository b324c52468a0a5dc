"""What the benchmark scripts share: a free loopback port, and waiting for a server to answer."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from urllib.parse import urlsplit

import httpx


def free_port() -> int:
    """Return a TCP port that was free on loopback a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], what: str, seconds: float = 30) -> None:
    """Poll a URL until it answers 2xx; fail if the process exits first or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).is_success:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {seconds:.0f} s")


class PostClient:
    """A keep-alive HTTP/1.1 client that only POSTs prepared bodies to one URL.

    A load generator beside the server on the same two cores takes CPU from the
    server it measures: httpx spends about 1.3 ms of CPU on a 30 KB POST, this
    client a tenth of that (bench/ingest.py prints both sides' CPU). It reads the
    status line and Content-Length of each answer, nothing more, and reconnects
    whenever the server closes the connection.
    """

    def __init__(self, url: str, content_type: str = "application/json") -> None:
        """Aim at `url` (http://host:port/path)."""
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.head = (f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                     f"Content-Type: {content_type}\r\n").encode()  # fmt: skip
        self.sock: socket.socket | None = None
        self.buffer = b""

    def post(self, body: bytes) -> int:
        """POST `body`; return the answer's status code (0 when the connection failed)."""
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        try:
            self.sock.sendall(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            status, closing = self._answer()
        except OSError:
            self.close()
            return 0
        if closing:
            self.close()
        return status

    def _answer(self) -> tuple[int, bool]:
        assert self.sock is not None
        while b"\r\n\r\n" not in self.buffer:
            self._receive()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(":", 1) for line in lines[1:])
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._receive()
        self.buffer = self.buffer[length:]
        return int(lines[0].split()[1]), headers.get("connection", "").strip() == "close"

    def _receive(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        """Close the connection (the next POST opens another)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
