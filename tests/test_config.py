"""Settings: defaults, typed values, one clear error naming the variable."""

from __future__ import annotations

import ipaddress

import pytest

from app.config import ConfigError, Settings, load_settings, warn_about

DEV = {"IVR_ENV": "development"}


def test_load_settings_defaults_match_design() -> None:
    settings = load_settings(DEV)
    assert settings.database_url == "sqlite:///instance/ivrdesk.sqlite3"
    assert settings.proxy_hops == 0
    assert settings.notify_content_type == "application/json"
    assert settings.max_report_bytes == 5 * 1024 * 1024
    assert settings.infobip_timeout == 15
    assert settings.batch_size == 1000
    assert settings.sync_limit == 2000
    assert settings.log_format == "json"
    assert settings.notify_allow_cidrs == ()
    assert settings.metrics_token is None


def test_load_settings_reads_every_variable() -> None:
    settings = load_settings(
        {
            "IVR_ENV": "production",
            "IVR_SECRET_KEY": "s" * 32,
            "IVR_DATABASE_URL": "postgresql://db/ivr",
            "IVR_INFOBIP_BASE_URL": "https://xyz.api.infobip.com/",
            "IVR_INFOBIP_API_KEY": "key",
            "IVR_PUBLIC_URL": "https://ivr.example.org",
            "IVR_NOTIFY_TOKENS": "first-token-0123456789, second-token-0123456789",
            "IVR_PROXY_HOPS": "1",
            "IVR_NOTIFY_CONTENT_TYPE": "application/xml",
            "IVR_MAX_REPORT_BYTES": "2048",
            "IVR_INFOBIP_TIMEOUT": "7.5",
            "IVR_BATCH_SIZE": "500",
            "IVR_SYNC_LIMIT": "100",
            "IVR_NOTIFY_ALLOW_CIDRS": "193.105.74.0/24, 62.140.31.0/24",
            "IVR_LOG_FORMAT": "text",
            "IVR_METRICS_TOKEN": "metrics",
            "IVR_ALLOWED_HOSTS": "IVR.example.org, .example.net",
        }
    )
    assert settings.allowed_hosts == ("ivr.example.org", ".example.net")
    assert settings.infobip_base_url == "https://xyz.api.infobip.com"
    assert settings.notify_tokens == ("first-token-0123456789", "second-token-0123456789")
    assert settings.notify_url == "https://ivr.example.org/notify/ivr/first-token-0123456789"
    assert settings.notify_allow_cidrs[0] == ipaddress.ip_network("193.105.74.0/24")
    assert settings.infobip_timeout == 7.5
    assert settings.connect_timeout == 5.0
    assert settings.launch_missing == ()


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("IVR_PROXY_HOPS", "two", "IVR_PROXY_HOPS must be a whole number"),
        ("IVR_PROXY_HOPS", "-1", "IVR_PROXY_HOPS must be at least 0"),
        ("IVR_BATCH_SIZE", "0", "IVR_BATCH_SIZE must be at least 1"),
        ("IVR_SYNC_LIMIT", "1.5", "IVR_SYNC_LIMIT must be a whole number"),
        ("IVR_MAX_REPORT_BYTES", "5MB", "IVR_MAX_REPORT_BYTES must be a whole number"),
        ("IVR_INFOBIP_TIMEOUT", "soon", "IVR_INFOBIP_TIMEOUT must be a number"),
        ("IVR_INFOBIP_TIMEOUT", "0", "IVR_INFOBIP_TIMEOUT must be between"),
        ("IVR_NOTIFY_CONTENT_TYPE", "text/plain", "IVR_NOTIFY_CONTENT_TYPE must be one of"),
        ("IVR_LOG_FORMAT", "yaml", "IVR_LOG_FORMAT must be one of"),
        ("IVR_ENV", "staging", "IVR_ENV must be one of"),
        ("IVR_INFOBIP_BASE_URL", "xyz.api.infobip.com", "IVR_INFOBIP_BASE_URL must be an absolute"),
        ("IVR_PUBLIC_URL", "ftp://x", "IVR_PUBLIC_URL must be an absolute"),
        ("IVR_NOTIFY_ALLOW_CIDRS", "10.0.0.0/33", "IVR_NOTIFY_ALLOW_CIDRS holds"),
        ("IVR_NOTIFY_TOKENS", "short", "IVR_NOTIFY_TOKENS: every token"),
        ("IVR_SECRET_KEY", "short", "IVR_SECRET_KEY must be at least"),
        ("IVR_ALLOWED_HOSTS", "https://ivr.example.org", "IVR_ALLOWED_HOSTS holds"),
        ("IVR_ALLOWED_HOSTS", "ivr.example.org:443", "IVR_ALLOWED_HOSTS holds"),
        ("IVR_REPORTS_MODE", "poll", "IVR_REPORTS_MODE must be one of push, pull"),
        ("IVR_PULL_INTERVAL", "0", "IVR_PULL_INTERVAL must be between 1 and 86400 seconds"),
        ("IVR_RECONCILE_INTERVAL", "-1", "IVR_RECONCILE_INTERVAL must be between 0 and 86400"),
        ("IVR_RECONCILE_INTERVAL", "often", "IVR_RECONCILE_INTERVAL must be a number of seconds"),
        ("IVR_RECONCILE_AFTER", "3000", "IVR_RECONCILE_AFTER must be between 0 and 2880 minutes"),
    ],
)
def test_load_settings_names_the_malformed_variable(
    variable: str, value: str, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment) as caught:
        load_settings({**DEV, variable: value})
    assert "\n" not in str(caught.value)


def test_load_settings_production_requires_secret_key() -> None:
    with pytest.raises(ConfigError, match="IVR_SECRET_KEY is required"):
        load_settings({})


def test_warn_about_names_missing_launch_settings(caplog: pytest.LogCaptureFixture) -> None:
    warnings = warn_about(Settings(env="development"))
    assert any("IVR_INFOBIP_BASE_URL" in w and "IVR_PUBLIC_URL" in w for w in warnings)
    assert any("IVR_NOTIFY_TOKENS is empty" in w for w in warnings)
    assert "launching is disabled" in caplog.text


def test_settings_basic_auth_counts_as_credentials() -> None:
    settings = load_settings(
        {
            **DEV,
            "IVR_INFOBIP_BASE_URL": "http://127.0.0.1:1",
            "IVR_INFOBIP_USERNAME": "user",
            "IVR_INFOBIP_PASSWORD": "pass",
            "IVR_PUBLIC_URL": "http://127.0.0.1:2",
            "IVR_NOTIFY_TOKENS": "token-0123456789abcdef",
        }
    )
    assert settings.launch_missing == ()


def test_reconciliation_and_pull_settings() -> None:
    defaults = load_settings(DEV)
    assert (defaults.reports_mode, defaults.pull_interval) == ("push", 30.0)
    assert (defaults.reconcile_interval, defaults.reconcile_after_minutes) == (600.0, 30.0)
    chosen = load_settings(
        {
            **DEV,
            "IVR_REPORTS_MODE": "pull",
            "IVR_PULL_INTERVAL": "5",
            "IVR_RECONCILE_INTERVAL": "0",
            "IVR_RECONCILE_AFTER": "0.5",
            "IVR_INFOBIP_BASE_URL": "http://127.0.0.1:1",
            "IVR_INFOBIP_API_KEY": "key",
            "IVR_PUBLIC_URL": "http://127.0.0.1:2",
            "IVR_NOTIFY_TOKENS": "token-0123456789abcdef",
        }
    )
    assert (chosen.pull_interval, chosen.reconcile_interval) == (5.0, 0.0)
    assert chosen.reconcile_after_minutes == 0.5
    # Pull mode sends no notifyUrl: launching needs neither a public URL nor a token.
    assert chosen.pull_mode
    assert chosen.notify_url is None
    bare = load_settings(
        {**DEV, "IVR_REPORTS_MODE": "pull", "IVR_INFOBIP_BASE_URL": "http://127.0.0.1:1",
         "IVR_INFOBIP_API_KEY": "key"}
    )  # fmt: skip
    assert bare.launch_missing == ()
    assert bare.infobip_missing == ()
    assert not any("IVR_NOTIFY_TOKENS" in line for line in warn_about(bare))
