"""Run nginx for tests with the site of deploy/nginx.conf: `with nginx(upstreams, tmp) as proxy:`.

The site file is the shipped one with only what a test host needs changed:
the upstream servers, the listen addresses (free loopback ports: the port-80
server keeps its redirect, the TLS server gets a throwaway certificate made
with openssl), the served name (127.0.0.1; other names get the default servers'
444) and log paths under the scratch directory. Everything else —
the proxy_set_header lines, body limits, timeouts, locations — is used as
shipped. nginx runs in the foreground (`daemon off`) in its own process group;
as root its workers stay root, so they can use the scratch directory.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SITE = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MAIN = """\
daemon off;
worker_processes 1;
{user}
pid {scratch}/nginx.pid;
error_log {scratch}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {scratch}/temp/body;
    proxy_temp_path {scratch}/temp/proxy;
    fastcgi_temp_path {scratch}/temp/fastcgi;
    uwsgi_temp_path {scratch}/temp/uwsgi;
    scgi_temp_path {scratch}/temp/scgi;
    access_log {scratch}/logs/access.log;
    include {scratch}/ivrdesk.conf;
}}
"""


@dataclass(frozen=True)
class Proxy:
    """A running nginx: its plain and TLS base URLs and what a client needs to trust it."""

    http_url: str
    https_url: str
    certificate: Path
    scratch: Path

    def tls(self) -> ssl.SSLContext:
        """Return an SSL context that trusts this nginx's certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def access_log(self) -> str:
        """Return nginx's access log so far (the site's own log format)."""
        return (self.scratch / "logs" / "ivrdesk-access.log").read_text()


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_certificate(scratch: Path) -> tuple[Path, Path]:
    """Make a throwaway self-signed certificate for 127.0.0.1 with openssl."""
    cert, key = scratch / "cert.pem", scratch / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def site_config(
    upstreams: Sequence[str],
    *,
    http_port: int,
    https_port: int,
    scratch: Path,
    cert: Path,
    key: Path,
) -> str:
    """Derive the test site from deploy/nginx.conf; fail if a line to replace is gone."""
    text = SITE.read_text()
    servers = "".join(
        f"    server {address} max_fails=3 fail_timeout=10s;\n" for address in upstreams
    )
    replacements = [
        (r"(?m)^\s*#?\s*server \S+:\d+ [^\n]*\n", ""),  # the shipped upstream servers
        (r"(upstream ivrdesk \{\n)", r"\g<1>" + servers),
        (r"(?m)^\s*listen \[::\]:\d+[^\n]*\n", ""),  # loopback IPv4 only
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        (r"listen 80 default_server;", f"listen 127.0.0.1:{http_port} default_server;"),
        (r"listen 443 ssl default_server;", f"listen 127.0.0.1:{https_port} ssl default_server;"),
        # The host name an operator puts in; clients ask for 127.0.0.1 (no TLS SNI, so the
        # default server needs a certificate to reach its 444).
        (r"server_name ivr\.example\.org;", "server_name 127.0.0.1;"),
        (r"ssl_reject_handshake on;", f"ssl_certificate {cert};\n    ssl_certificate_key {key};"),
        (r"ssl_certificate +\S+;", f"ssl_certificate {cert};"),
        (r"ssl_certificate_key +\S+;", f"ssl_certificate_key {key};"),
        (r"/var/log/nginx/", f"{scratch}/logs/"),
        (r"root /var/www/html;", f"root {scratch}/www;"),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count, f"deploy/nginx.conf no longer has {pattern!r}"
    return text


def _wait_until_up(process: subprocess.Popen[bytes], port: int, scratch: Path) -> None:
    """Wait for nginx to accept connections; fail with its error log."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            logs = "".join(p.read_text() for p in (scratch / "logs").glob("*.log"))
            raise RuntimeError(f"nginx exited with {process.returncode}:\n{logs}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nginx did not start listening in 15 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop nginx's process group: fast shutdown, then by force."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def reserve_ports() -> tuple[int, int]:
    """Pick the plain and TLS ports before the upstreams start (they need the public URL)."""
    return free_port(), free_port()


@contextmanager
def nginx(
    upstreams: Sequence[str], scratch: Path, ports: tuple[int, int] | None = None
) -> Iterator[Proxy]:
    """Run nginx in front of these upstreams (host:port); yield its URLs once it listens."""
    http_port, https_port = ports or reserve_ports()
    for folder in ("logs", "temp", "www"):
        (scratch / folder).mkdir(parents=True, exist_ok=True)
    cert, key = make_certificate(scratch)
    site = site_config(
        upstreams, http_port=http_port, https_port=https_port, scratch=scratch, cert=cert, key=key
    )
    (scratch / "ivrdesk.conf").write_text(site)
    user = "user root;" if os.geteuid() == 0 else ""  # else workers would run as nobody
    (scratch / "nginx.conf").write_text(MAIN.format(user=user, scratch=scratch))
    command = [
        NGINX,
        "-p",
        str(scratch),
        "-e",
        str(scratch / "logs" / "startup.log"),
        "-c",
        str(scratch / "nginx.conf"),
    ]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_until_up(process, https_port, scratch)
        yield Proxy(
            http_url=f"http://127.0.0.1:{http_port}",
            https_url=f"https://127.0.0.1:{https_port}",
            certificate=cert,
            scratch=scratch,
        )
    finally:
        _stop(process)
