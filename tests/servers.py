"""Start ivrdesk under real gunicorn for tests: `with gunicorn({...}) as url:`.

The server runs deploy/gunicorn.conf.py (so the tests exercise the shipped
configuration) on a free loopback port, in its own process group, with a clean
environment: only the variables the caller gives (plus development defaults)
reach it. Its stdout and stderr (gunicorn's access and error logs and the app's
JSON lines) go to `log` when given.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
_LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")
# Variables of the test runner's own environment that must not leak into the server.
_PREFIXES = ("IVR_", "GUNICORN_", "PROMETHEUS_MULTIPROC_DIR")


def clean_environment(env: Mapping[str, str], workers: int, scratch: Path) -> dict[str, str]:
    """Return the runner's environment without IVR_/GUNICORN_ variables, plus test defaults."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}
    clean.update(
        {
            "IVR_ENV": "development",
            "IVR_INSTANCE_PATH": str(scratch / "instance"),
            "PROMETHEUS_MULTIPROC_DIR": str(scratch / "metrics"),
            "GUNICORN_BIND": "127.0.0.1:0",
            "GUNICORN_WORKERS": str(workers),
            "PYTHONUNBUFFERED": "1",
        }
    )
    clean.update(env)
    Path(clean["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    return clean


def _wait_until_up(process: subprocess.Popen[bytes], log: Path, timeout: float) -> str:
    """Read the bound URL from the log, then wait for /healthz; fail with the log."""
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        if url is None:
            found = _LISTENING.search(log.read_text(errors="replace"))
            url = found.group(1) if found else None
        if url is not None:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"gunicorn did not answer /healthz in {timeout}s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn's process group gracefully, then by force."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@contextmanager
def gunicorn(
    env: Mapping[str, str],
    *,
    workers: int = 2,
    log: Path | None = None,
    timeout: float = 30.0,
) -> Iterator[str]:
    """Run `gunicorn -c deploy/gunicorn.conf.py wsgi:app`; yield its base URL once /healthz answers.

    `env` adds to (and overrides) IVR_ENV=development, IVR_INSTANCE_PATH,
    PROMETHEUS_MULTIPROC_DIR (both under a temporary directory),
    GUNICORN_BIND=127.0.0.1:0 (the actual port is read from gunicorn's log) and
    GUNICORN_WORKERS=workers; pass at least IVR_DATABASE_URL (a migrated
    database). The whole process group is stopped on exit.
    """
    with tempfile.TemporaryDirectory(prefix="ivrdesk-gunicorn-") as scratch:
        log_path = log or Path(scratch) / "gunicorn.log"
        environment = clean_environment(env, workers, Path(scratch))
        with log_path.open("wb") as output:
            process = subprocess.Popen(
                [str(GUNICORN), "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                yield _wait_until_up(process, log_path, timeout)
            finally:
                _stop(process)
