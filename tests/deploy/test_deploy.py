"""The files in deploy/: gunicorn settings pinned, release step run, the rest checked statically."""

from __future__ import annotations

import configparser
import os
import re
import runpy
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import ConfigError, load_settings
from app.web.api import MAX_LAUNCH_BYTES
from tests.servers import ROOT, clean_environment, gunicorn

DEPLOY = ROOT / "deploy"
MIB = 1024 * 1024


def gunicorn_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str
) -> dict[str, Any]:
    """Evaluate deploy/gunicorn.conf.py under the given GUNICORN_* variables."""
    for name in list(os.environ):
        if name.startswith("GUNICORN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def env_example() -> dict[str, str]:
    """Read deploy/.env.example as systemd's EnvironmentFile= would."""
    values = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / name).read_text())
    return parser


def test_gunicorn_defaults_suit_a_two_core_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = gunicorn_settings(monkeypatch, tmp_path)
    assert conf["bind"] == "127.0.0.1:8000"
    assert (conf["workers"], conf["threads"], conf["worker_class"]) == (2, 4, "gthread")
    assert conf["timeout"] == 120
    assert conf["graceful_timeout"] == 30
    assert conf["keepalive"] == 75
    assert conf["limit_request_line"] == 4094
    assert conf["limit_request_fields"] == 50
    assert conf["limit_request_field_size"] == 8190
    assert (conf["max_requests"], conf["max_requests_jitter"]) == (10000, 1000)
    assert (conf["accesslog"], conf["errorlog"]) == ("-", "-")
    assert conf["logger_class"] == "app.logs.Logger"
    assert conf["preload_app"] is False
    assert conf["control_socket_disable"] is True
    assert "%({x-request-id}o)s" in conf["access_log_format"]
    for hook in ("on_starting", "when_ready", "post_fork", "child_exit", "on_exit"):
        assert callable(conf[hook])


def test_gunicorn_settings_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = gunicorn_settings(
        monkeypatch,
        tmp_path,
        GUNICORN_BIND="0.0.0.0:9000",
        GUNICORN_WORKERS="5",
        GUNICORN_THREADS="8",
        GUNICORN_TIMEOUT="300",
        GUNICORN_PRELOAD="true",
    )
    assert (conf["bind"], conf["workers"], conf["threads"]) == ("0.0.0.0:9000", 5, 8)
    assert conf["timeout"] == 300
    assert conf["preload_app"] is True


def test_gunicorn_warns_about_any_bind_beyond_loopback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    exposed = gunicorn_settings(monkeypatch, tmp_path)["exposed_addresses"]
    private = ["127.0.0.1:8000", "[::1]:8000", "localhost:8000", "unix:/run/ivrdesk/g.sock"]
    assert exposed(private) == []
    public = ["0.0.0.0:8000", "10.0.0.11:8000", "[::]:8000", "ivr.example.org:8000"]
    assert exposed(public) == public


def test_gunicorn_refuses_oversized_request_heads(database_url: str) -> None:
    with gunicorn({"IVR_DATABASE_URL": database_url}, workers=1) as url:
        many = {f"X-Filler-{n}": "x" for n in range(60)}
        long_line = httpx.get(f"{url}/healthz?pad={'x' * 4100}")
        big_field = httpx.get(f"{url}/healthz", headers={"X-Filler": "x" * 8200})
        statuses = [
            httpx.get(f"{url}/healthz", headers=many).status_code,
            long_line.status_code,
            big_field.status_code,
        ]
        assert statuses == [431, 414, 431], statuses
        usual = {f"X-Filler-{n}": "x" * 100 for n in range(30)}
        assert httpx.get(f"{url}/healthz", headers=usual).status_code == 200


def test_shipped_configs_keep_gunicorn_on_loopback() -> None:
    service = (DEPLOY / "ivrdesk.service").read_text()
    # The unit keeps the loopback default of gunicorn.conf.py.
    assert not re.search(r"(?m)^Environment=.*GUNICORN_BIND", service)
    assert "# GUNICORN_BIND=127.0.0.1:8000" in (DEPLOY / ".env.example").read_text()
    operations = (ROOT / "docs" / "OPERATIONS.md").read_text()
    binds = re.findall(r"GUNICORN_BIND=(\S+?)[`\s]", operations)
    assert binds
    assert all(b.startswith(("127.0.0.1:", "unix:")) for b in binds), binds
    assert "-p 127.0.0.1:8000:8000" in (DEPLOY / "Dockerfile").read_text()
    assert re.findall(r"^\s*server (\S+) max_fails", (DEPLOY / "nginx.conf").read_text(), re.M) == [
        "127.0.0.1:8000"
    ]


def test_gunicorn_start_clears_stale_metrics(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = gunicorn_settings(monkeypatch, tmp_path)
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_123.db").write_bytes(b"old")
    (metrics / "keep.txt").write_text("not ours")
    conf["on_starting"](None)
    assert sorted(p.name for p in metrics.iterdir()) == ["keep.txt"]


def test_release_migrates_then_execs_gunicorn(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'release.sqlite3'}"
    env = clean_environment({"IVR_DATABASE_URL": url}, 2, tmp_path)
    done = subprocess.run(
        [str(DEPLOY / "release.sh"), "--check-config"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "database is at the newest revision" in done.stdout
    again = subprocess.run(
        [str(DEPLOY / "release.sh"), "db", "upgrade"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr


def test_env_example_names_every_setting_and_refuses_its_placeholder() -> None:
    read = set(re.findall(r'"(IVR_[A-Z_]+)"', (ROOT / "app" / "config.py").read_text()))
    example = env_example()
    assert read <= set(example), f"missing from .env.example: {read - set(example)}"
    with pytest.raises(ConfigError, match="placeholder"):
        load_settings(example)
    settings = load_settings({**example, "IVR_SECRET_KEY": "a-real-secret-0123456789"})
    assert settings.max_report_bytes == 5 * MIB
    assert settings.proxy_hops == 1


def test_nginx_site_proxies_with_the_right_limits_and_headers() -> None:
    site = (DEPLOY / "nginx.conf").read_text()
    assert site.count("{") == site.count("}")
    for header in ("Host $host", "X-Forwarded-For $proxy_add_x_forwarded_for",
                   "X-Forwarded-Proto $scheme", "X-Forwarded-Host $host"):  # fmt: skip
        assert f"proxy_set_header {header};" in site
    assert re.search(r"^    client_max_body_size 5m;", site, re.M)
    assert load_settings({"IVR_ENV": "development"}).max_report_bytes == 5 * MIB
    assert MAX_LAUNCH_BYTES == 64 * MIB
    for path in ("/api/v1/campaigns", "/voice/ivr/1/messages"):
        block = site.split(f"location = {path} {{", 1)[1].split("}", 1)[0]
        assert "client_max_body_size 64m;" in block
    assert "location /notify/ivr/ {" in site
    assert "ssl_certificate " in site
    # Every access_log uses the format that masks the notify token.
    assert re.findall(r"access_log (\S+)", site) == ["/var/log/nginx/ivrdesk-access.log"] * 4 + [
        "off;"
    ]
    assert "${notify}***${rest}" in site
    # Unknown host names never reach ivrdesk: separate default servers close the connection.
    defaults = [block for block in site.split("server {")[1:] if "default_server" in block]
    assert len(defaults) == 2
    for block in defaults:
        assert "server_name _;" in block
        assert "return 444;" in block
        assert "proxy_pass" not in block
    assert "ssl_reject_handshake on;" in defaults[1]
    assert site.count("server_name ivr.example.org;") == 2


def test_dockerfile_runs_the_release_step_as_a_user_with_a_healthcheck() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    assert lines[[line.startswith("FROM") for line in lines].index(True)] == (
        "FROM python:3.11-slim"
    )
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users == ["ivrdesk"]
    health = lines.index(next(line for line in lines if line.startswith("HEALTHCHECK")))
    assert "http://127.0.0.1:8000/healthz" in lines[health + 1]
    assert 'ENTRYPOINT ["/app/deploy/release.sh"]' in lines
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_systemd_units_run_ivrdesk_and_the_dispatcher() -> None:
    web = unit("ivrdesk.service")["Service"]
    assert web["ExecStart"] == "/opt/ivrdesk/deploy/release.sh"
    assert web["User"] == "ivrdesk"
    assert web["EnvironmentFile"] == "/etc/ivrdesk/ivrdesk.env"
    assert "PROMETHEUS_MULTIPROC_DIR=/run/ivrdesk/metrics" in web["Environment"]
    assert unit("ivrdesk-dispatch.service")["Service"]["ExecStart"].endswith("ivrdesk dispatch")
