"""Settings: every IVR_* variable, typed, read once from the environment."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from app.infobip.limits import LOGS_WINDOW_HOURS, MAX_DESTINATIONS_PER_MESSAGE

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite:///instance/ivrdesk.sqlite3"
MIB = 1024 * 1024
DAY_SECONDS = 86_400
LOGS_WINDOW_MINUTES = LOGS_WINDOW_HOURS * 60  # Infobip's logs forget a call after 48 hours
# A host name of IVR_ALLOWED_HOSTS; a leading dot also allows every subdomain.
_HOST_NAME = re.compile(r"\.?[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")
# Secret keys copied from examples (deploy/.env.example) are refused outside development.
PLACEHOLDER_SECRET_PREFIXES = ("change-me", "changeme", "replace-me", "your-secret")
PLACEHOLDER_SECRET_KEYS = frozenset({"secret", "secret-key", "dev", "development", "default"})


class ConfigError(Exception):
    """A setting is malformed or missing; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Every IVR_* setting of DESIGN.md "Configuration", typed."""

    database_url: str = DEFAULT_DATABASE_URL
    infobip_base_url: str | None = None
    infobip_api_key: str | None = None
    infobip_username: str | None = None
    infobip_password: str | None = None
    public_url: str | None = None
    notify_tokens: tuple[str, ...] = ()
    secret_key: str | None = None
    proxy_hops: int = 0
    notify_content_type: str = "application/json"
    max_report_bytes: int = 5 * MIB
    max_report_results: int = 10_000
    infobip_timeout: float = 15.0
    batch_size: int = 1000
    sync_limit: int = 2000
    env: str = "production"
    notify_allow_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    log_format: str = "json"
    metrics_token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    reports_mode: str = "push"
    pull_interval: float = 30.0
    reconcile_interval: float = 600.0
    reconcile_after_minutes: float = 30.0
    instance_path: Path = field(default_factory=lambda: Path("instance"))

    @property
    def development(self) -> bool:
        """Say whether this is a development deployment."""
        return self.env == "development"

    @property
    def pull_mode(self) -> bool:
        """Say whether reports are pulled (no notifyUrl is sent) rather than posted to us."""
        return self.reports_mode == "pull"

    @property
    def launch_missing(self) -> tuple[str, ...]:
        """Name the settings that launching needs and that are missing.

        In pull mode no notifyUrl is sent: neither a public URL nor a notify token is needed.
        """
        missing = list(self.infobip_missing)
        if self.pull_mode:
            return tuple(missing)
        if not self.public_url:
            missing.append("IVR_PUBLIC_URL")
        if not self.notify_tokens:
            missing.append("IVR_NOTIFY_TOKENS")
        return tuple(missing)

    @property
    def infobip_missing(self) -> tuple[str, ...]:
        """Name the settings missing to read Infobip (its logs, pulled reports)."""
        missing = []
        if not self.infobip_base_url:
            missing.append("IVR_INFOBIP_BASE_URL")
        if not self.infobip_api_key and not (self.infobip_username and self.infobip_password):
            missing.append("IVR_INFOBIP_API_KEY (or IVR_INFOBIP_USERNAME/IVR_INFOBIP_PASSWORD)")
        return tuple(missing)

    @property
    def notify_url(self) -> str | None:
        """Build the notifyUrl put into every launch (carries the first notify token).

        None in pull mode: calls are sent without a notifyUrl, so that Infobip keeps
        their reports for GET /voice/1/reports (INFOBIP.md §6).
        """
        if self.pull_mode or not self.public_url or not self.notify_tokens:
            return None
        return f"{self.public_url.rstrip('/')}/notify/ivr/{self.notify_tokens[0]}"

    @property
    def connect_timeout(self) -> float:
        """Give the connect timeout: shorter than the read timeout."""
        return min(5.0, self.infobip_timeout)


def _text(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _integer(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = _text(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _span(
    environ: Mapping[str, str],
    name: str,
    default: float,
    *,
    unit: str,
    low: float,
    high: float,
    low_allowed: bool = True,
) -> float:
    """Read a number of seconds or minutes between low (allowed or not) and high (allowed)."""
    raw = _text(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of {unit}, got {raw!r}") from None
    if not (low <= value if low_allowed else low < value) or value > high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g} {unit}, got {raw}")
    return value


def _choice(environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _text(environ, name) or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _url(environ: Mapping[str, str], name: str) -> str | None:
    value = _text(environ, name)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an absolute http(s) URL, got {value!r}")
    return value.rstrip("/")


def _networks(
    environ: Mapping[str, str], name: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    raw = _text(environ, name) or ""
    networks = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name} holds {item!r}, which is not a network") from None
    return tuple(networks)


def _tokens(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = _text(environ, name) or ""
    tokens = tuple(filter(None, (part.strip() for part in raw.split(","))))
    for token in tokens:
        if len(token) < 16 or not all(c.isalnum() or c in "-_." for c in token):
            raise ConfigError(
                f"{name}: every token must be at least 16 characters of A-Z a-z 0-9 - _ ."
            )
    return tokens


def _hosts(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = _text(environ, name) or ""
    hosts = tuple(filter(None, (part.strip().lower() for part in raw.split(","))))
    for host in hosts:
        if not _HOST_NAME.fullmatch(host):
            raise ConfigError(
                f"{name} holds {host!r}, which is not a host name (no port, no scheme)"
            )
    return hosts


def is_placeholder_secret(key: str) -> bool:
    """Say whether a secret key is a known example value rather than a real secret."""
    lowered = key.strip().lower()
    return lowered in PLACEHOLDER_SECRET_KEYS or lowered.startswith(PLACEHOLDER_SECRET_PREFIXES)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every IVR_* variable; raise ConfigError naming the first malformed one."""
    environ = os.environ if environ is None else environ
    env = _choice(environ, "IVR_ENV", "production", ("production", "development"))
    secret_key = _text(environ, "IVR_SECRET_KEY")
    if env == "production" and not secret_key:
        raise ConfigError("IVR_SECRET_KEY is required when IVR_ENV is production")
    if env != "development" and secret_key is not None and is_placeholder_secret(secret_key):
        raise ConfigError("IVR_SECRET_KEY is an example placeholder: set a long random value")
    if secret_key is not None and len(secret_key) < 16:
        raise ConfigError("IVR_SECRET_KEY must be at least 16 characters")
    return Settings(
        database_url=_text(environ, "IVR_DATABASE_URL") or DEFAULT_DATABASE_URL,
        infobip_base_url=_url(environ, "IVR_INFOBIP_BASE_URL"),
        infobip_api_key=_text(environ, "IVR_INFOBIP_API_KEY"),
        infobip_username=_text(environ, "IVR_INFOBIP_USERNAME"),
        infobip_password=_text(environ, "IVR_INFOBIP_PASSWORD"),
        public_url=_url(environ, "IVR_PUBLIC_URL"),
        notify_tokens=_tokens(environ, "IVR_NOTIFY_TOKENS"),
        secret_key=secret_key,
        proxy_hops=_integer(environ, "IVR_PROXY_HOPS", 0, 0),
        notify_content_type=_choice(
            environ,
            "IVR_NOTIFY_CONTENT_TYPE",
            "application/json",
            ("application/json", "application/xml"),
        ),
        max_report_bytes=_integer(environ, "IVR_MAX_REPORT_BYTES", 5 * MIB, 1024),
        max_report_results=_integer(environ, "IVR_MAX_REPORT_RESULTS", 10_000, 1),
        infobip_timeout=_span(
            environ,
            "IVR_INFOBIP_TIMEOUT",
            15.0,
            unit="seconds",
            low=0,
            high=600,
            low_allowed=False,
        ),
        batch_size=_integer(environ, "IVR_BATCH_SIZE", 1000, 1),
        sync_limit=_integer(environ, "IVR_SYNC_LIMIT", 2000, 0),
        env=env,
        notify_allow_cidrs=_networks(environ, "IVR_NOTIFY_ALLOW_CIDRS"),
        log_format=_choice(environ, "IVR_LOG_FORMAT", "json", ("json", "text")),
        metrics_token=_text(environ, "IVR_METRICS_TOKEN"),
        allowed_hosts=_hosts(environ, "IVR_ALLOWED_HOSTS"),
        reports_mode=_choice(environ, "IVR_REPORTS_MODE", "push", ("push", "pull")),
        pull_interval=_span(
            environ, "IVR_PULL_INTERVAL", 30.0, unit="seconds", low=1, high=DAY_SECONDS
        ),
        reconcile_interval=_span(
            environ, "IVR_RECONCILE_INTERVAL", 600.0, unit="seconds", low=0, high=DAY_SECONDS
        ),
        reconcile_after_minutes=_span(
            environ, "IVR_RECONCILE_AFTER", 30.0, unit="minutes", low=0, high=LOGS_WINDOW_MINUTES
        ),
        instance_path=Path(_text(environ, "IVR_INSTANCE_PATH") or "instance"),
    )


def warn_about(settings: Settings) -> list[str]:
    """Log, and return, the start-up warnings for settings that disable a feature."""
    warnings = []
    if settings.launch_missing:
        warnings.append(
            "launching is disabled (503 not_configured): missing "
            + ", ".join(settings.launch_missing)
        )
    if not settings.notify_tokens and not settings.pull_mode:
        warnings.append("IVR_NOTIFY_TOKENS is empty: every delivery report will be refused")
    if not settings.metrics_token and not settings.development:
        warnings.append("IVR_METRICS_TOKEN is not set: /metrics answers 403 in production")
    if settings.batch_size > MAX_DESTINATIONS_PER_MESSAGE:
        limit = MAX_DESTINATIONS_PER_MESSAGE
        warnings.append(
            f"IVR_BATCH_SIZE above {limit} is split into messages of {limit} destinations"
        )
    for line in warnings:
        log.warning(line)
    return warnings
