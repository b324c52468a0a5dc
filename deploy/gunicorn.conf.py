"""gunicorn settings for ivrdesk, from the environment, with defaults for a 2-core host.

Run as `gunicorn -c deploy/gunicorn.conf.py wsgi:app` (deploy/release.sh does,
after migrating). Every value below can be changed through a GUNICORN_*
variable; IVR_* variables configure the app itself (deploy/.env.example).
"""

import ipaddress
import os
import shutil
import tempfile
from pathlib import Path

# Loopback (or a unix socket) only: gunicorn must never be exposed without nginx in
# front. A thread reads a request's headers and body as they trickle in, so a few
# dozen slow clients would hold every thread (even /healthz would wait); nginx reads
# whole requests first (deploy/nginx.conf, docs/OPERATIONS.md "Scaling out").
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Request limits, explicit: a request line of 4 KiB (the longest URL ivrdesk takes,
# every filter and a cursor, is under 2 KiB), 50 header fields of at most 8 KiB each.
limit_request_line = int(os.environ.get("GUNICORN_LIMIT_REQUEST_LINE", "4094"))
limit_request_fields = int(os.environ.get("GUNICORN_LIMIT_REQUEST_FIELDS", "50"))
limit_request_field_size = int(os.environ.get("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", "8190"))
# 2 cores: 2 processes x 4 threads. Requests mostly wait on the database or on
# Infobip, so threads are cheap; add workers with cores.
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# A synchronous launch waits for Infobip (IVR_INFOBIP_TIMEOUT, with retries) for
# each batch of up to IVR_SYNC_LIMIT calls: give it room.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Longer than nginx's upstream keepalive_timeout, so gunicorn never closes first.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
# Recycle workers now and then (with jitter, so they do not all restart at once).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "1000"))
preload_app = os.environ.get("GUNICORN_PRELOAD", "").lower() in ("1", "true", "yes")
# Both logs on stdout (journald or the container runtime collects them), JSON unless
# IVR_LOG_FORMAT=text. The logger class masks the notify token and other secrets.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
logger_class = "app.logs.Logger"
access_log_format = os.environ.get(
    "GUNICORN_ACCESS_LOG_FORMAT",
    '%(h)s %({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" %({x-request-id}o)s',
)
# nginx in front terminates TLS and sets X-Forwarded-*; the app trusts them only through
# IVR_PROXY_HOPS (werkzeug ProxyFix): gunicorn itself trusts no one's, not even loopback's.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "")
proc_name = "ivrdesk"
# gunicorn >= 25.1 opens a control socket under $HOME unless told otherwise; systemd
# and signals manage ivrdesk, and several instances on one host would share that path.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# Prometheus multiprocess mode: every worker writes its samples under this directory
# and /metrics adds them up. It must be set before any worker imports the app.
_created_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _created_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ivrdesk-metrics-")
METRICS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def exposed_addresses(addresses):
    """Return the bind addresses that are neither loopback nor a unix socket."""
    exposed = []
    for address in addresses:
        if address.startswith(("unix:", "fd://")):
            continue
        host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
        if host != "localhost" and not _is_loopback(host):
            exposed.append(address)
    return exposed


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def on_starting(server):
    """Start from empty metrics: files left by an earlier run would be counted again."""
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in METRICS_DIR.glob("*.db"):
        stale.unlink()


def when_ready(server):
    """Warn, once listening, about every address beyond loopback."""
    for address in exposed_addresses(server.cfg.bind):
        server.log.warning(
            "gunicorn listens on %s: never expose it without nginx in front "
            "(docs/OPERATIONS.md, Scaling out)",
            address,
        )


def post_fork(server, worker):
    """Drop database connections inherited from a preloaded app (never share a socket)."""
    if not server.cfg.preload_app:
        return
    app = worker.app.wsgi()
    state = getattr(app, "extensions", {}).get("ivrdesk")
    if state is not None:
        state.engine.dispose(close=False)


def child_exit(server, worker):
    """Let the metrics of a worker that died stop counting as live."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory if this configuration created it."""
    if _created_metrics_dir:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
