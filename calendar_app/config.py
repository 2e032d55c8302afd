"""Settings: the one place they live.

Order: built-in defaults -> ``CALENDAR_APP_*`` environment variables (Flask's
``from_prefixed_env``) -> test overrides -> :func:`validate`. Nothing else in the
package reads ``os.environ``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SUPPORTED_DATABASES = ("sqlite", "postgresql")
SUPPORTED_LOCALES = ("sv", "en")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
METRICS_TOKEN_MIN_LENGTH = 16


class ConfigError(Exception):
    """A setting is missing or wrong; start-up stops with this message."""


# The contract as published by Inera, beside the project (see ../shared/corpus/README.md);
# a deployment sets CALENDAR_APP_RIVTA_WSDL to its own copy.
_CONTRACT_WSDL = (
    Path(__file__).resolve().parents[2]
    / "shared/corpus/rivta/TD_SCHEDULING_1_1_0_R/interactions"
    / "GetSubjectOfCareScheduleInteraction"
    / "GetSubjectOfCareScheduleInteraction_1.1_RIVTABP21.wsdl"
)


def defaults(instance_path: str) -> dict[str, Any]:
    """Return the embedded defaults: SQLite under instance/, Swedish, Stockholm time."""
    return {
        "DATABASE_URL": f"sqlite:///{Path(instance_path) / 'calendar.sqlite3'}",
        "SECRET_KEY": None,
        "DEFAULT_TIMEZONE": "Europe/Stockholm",
        "BABEL_DEFAULT_LOCALE": "sv",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Stockholm",
        "MAX_QUERY_DAYS": 400,
        "MAX_ICS_BYTES": 10 * 1024 * 1024,
        "MAX_CONTENT_LENGTH": 12 * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # None: Secure (and the __Host- cookie name) exactly when PUBLIC_BASE_URL is https.
        "SESSION_COOKIE_SECURE": None,
        "SESSION_LIFETIME_HOURS": 12,
        "SESSION_IDLE_MINUTES": 30,
        # Where the service is reached from outside, e.g. https://kalender.regionkronoberg.se;
        # empty for the embedded default on 127.0.0.1.
        "PUBLIC_BASE_URL": "",
        # How many reverse proxies in front set X-Forwarded-For/-Proto; 0 trusts none.
        # Login throttling and rate limits count per client address, so set this behind one.
        "TRUSTED_PROXIES": 0,
        "PASSWORD_LOGIN": True,
        # "embedded": the reminder jobs run inside the web process (make run); "off": run
        # `calendar-app scheduler` beside the web workers.
        # Twilio: without an account SID, messages go to the console sender (log only).
        "TWILIO_ACCOUNT_SID": "",
        "TWILIO_AUTH_TOKEN": "",
        "TWILIO_FROM": "",
        "TWILIO_MESSAGING_SERVICE_SID": "",
        "TWILIO_API_BASE_URL": "",
        "RATELIMIT_WEBHOOKS": "600 per minute",
        "SCHEDULER": "off",
        "SCHEDULER_DISPATCH_SECONDS": 15,
        # How often every person's reminders are re-planned as the horizon moves; 0: never
        # (for a dispatch-only benchmark; changes to bookings re-plan at once anyway).
        "SCHEDULER_REPLAN_MINUTES": 60,
        # A claimed reminder whose scheduler died is taken again after this long.
        "REMINDER_LEASE_SECONDS": 300,
        "LOGIN_MAX_FAILURES_PER_ACCOUNT": 5,
        "LOGIN_MAX_FAILURES_PER_ADDRESS": 30,
        # A browser that has signed in to an account before (its device cookie says so) is
        # counted on its own, so others' guesses do not lock the person out of it.
        "LOGIN_MAX_FAILURES_PER_DEVICE": 5,
        "LOGIN_DEVICE_COOKIE_DAYS": 180,
        "LOGIN_THROTTLE_MINUTES": 15,
        # Strict-Transport-Security: sent exactly when PUBLIC_BASE_URL is https (one year by
        # default; 0 sends none, e.g. while trying https out).
        "HSTS_MAX_AGE_SECONDS": 365 * 24 * 3600,
        # Request rate limits (Flask-Limiter); several web workers share counts only with a
        # shared storage such as redis://127.0.0.1:6379.
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_LOGIN": "20 per minute",
        "RATELIMIT_API": "300 per minute",
        # Fetches of unknown or revoked feed URLs from one address.
        "RATELIMIT_FEED_MISSES": "30 per hour",
        # PostgreSQL: the connections each process keeps for feed fetches, beside its main
        # pool (db.make_fetch_engine): as many as it has threads serving requests
        # (CALENDAR_APP_WEB_THREADS, 4 by default).
        "FETCH_CONNECTIONS": 4,
        "MAX_API_BODY_BYTES": 64 * 1024,
        # OpenID Connect through the county's identity broker (BankID, Freja, SITHS);
        # off while OIDC_ISSUER is empty.
        "OIDC_ISSUER": "",
        "OIDC_CLIENT_ID": "",
        "OIDC_CLIENT_SECRET": "",
        "OIDC_SCOPE": "openid profile",
        "OIDC_PERSONNUMMER_CLAIM": "https://id.oidc.se/claim/personalIdentityNumber",
        "OIDC_STAFF_ID_CLAIM": "employeeHsaId",
        # A claim saying whether the person has protected personal data (true/false), where
        # the county's broker sends one; empty: none is read.
        "OIDC_PROTECTED_IDENTITY_CLAIM": "",
        "OIDC_TIMEOUT_SECONDS": 10,
        # Synced sources (live sync). Secrets of sources are sealed with this key (or, if
        # empty, SECRET_KEY; with neither set, a key file in the instance folder).
        "SOURCE_SECRET_KEY": "",
        # Hosts a source's URL may reach although they resolve to a private, loopback or
        # link-local address (comma-separated), e.g. an internal booking server.
        "SOURCE_ALLOWED_HOSTS": "",
        "SYNC_SECONDS": 60,  # how often the scheduler looks for sources due to be read
        "SYNC_BATCH": 50,  # sources claimed per look
        "SYNC_LEASE_SECONDS": 300,  # a claimed source whose scheduler died is read again after
        "SYNC_TIMEOUT_SECONDS": 20,
        "SYNC_POLL_MINUTES": 30,  # a new source's poll interval
        # A read that would cancel more than this share of a source's future bookings (or
        # empties a source that had some) is held for review.
        "SYNC_MASS_CANCEL_SHARE": 0.5,
        "SYNC_FAILING_AFTER": 3,  # failed reads in a row before a source counts as failing
        # RIV-TA crm:scheduling (GetSubjectOfCareSchedule): Inera's published service
        # contract, and the client certificate, key and CA for the national platform's
        # mutual TLS (PEM files).
        "RIVTA_WSDL": str(_CONTRACT_WSDL) if _CONTRACT_WSDL.is_file() else "",
        "RIVTA_CLIENT_CERT": "",
        "RIVTA_CLIENT_KEY": "",
        "RIVTA_CA_BUNDLE": "",
        # Log lines: "text" (today's lines, for development) or "json" (one JSON object a
        # line, for production); see docs/observability.md. LOG_CONFIGURE: None installs
        # the handler exactly when LOG_FORMAT is "json"; true always, false never (a host
        # that configures logging itself).
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "INFO",
        "LOG_CONFIGURE": None,
        # /metrics wants "Authorization: Bearer <token>" when this is set; without it,
        # only clients on this host (loopback, not through a proxy) may read it.
        "METRICS_TOKEN": "",
    }


def load(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill ``app.config`` from defaults, environment and overrides, then validate it."""
    app.config.from_mapping(defaults(app.instance_path))
    app.config.from_prefixed_env(prefix="CALENDAR_APP")
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config["SOURCE_SECRET_KEY"]:
        app.config["SOURCE_SECRET_KEY"] = app.config["SECRET_KEY"] or _instance_key(
            Path(app.instance_path) / "source-secret.key"
        )
    if not app.config["SECRET_KEY"]:
        # A per-process key keeps the embedded default working; production sets one so that
        # sessions survive restarts and several workers agree.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    validate(app.config)


def _instance_key(path: Path) -> str:
    """The embedded default's key for sealed source secrets: made once, kept on disk, so
    that sources still work after a restart (sessions, by contrast, may end)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def validate(config: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` with a clear message for a setting that cannot work."""
    raw_url = config.get("DATABASE_URL")
    try:
        url = make_url(str(raw_url))
    except ArgumentError as exc:
        raise ConfigError(
            f"CALENDAR_APP_DATABASE_URL is not a database URL ({raw_url!r}): "
            "use sqlite:///path/to/file.sqlite3 or postgresql+psycopg://user@host/dbname"
        ) from exc
    backend = url.get_backend_name()
    if backend not in SUPPORTED_DATABASES:
        raise ConfigError(
            f"CALENDAR_APP_DATABASE_URL uses {backend!r}; supported are "
            f"{', '.join(SUPPORTED_DATABASES)} (e.g. postgresql+psycopg://user@host/dbname)"
        )
    if backend == "postgresql" and url.get_driver_name() != "psycopg":
        raise ConfigError(
            "CALENDAR_APP_DATABASE_URL: use the psycopg driver (postgresql+psycopg://)"
        )
    config["DATABASE_URL"] = url
    try:
        ZoneInfo(str(config["DEFAULT_TIMEZONE"]))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"CALENDAR_APP_DEFAULT_TIMEZONE {config['DEFAULT_TIMEZONE']!r} is not an IANA zone"
        ) from exc
    if config["BABEL_DEFAULT_LOCALE"] not in SUPPORTED_LOCALES:
        raise ConfigError(f"CALENDAR_APP_BABEL_DEFAULT_LOCALE must be one of {SUPPORTED_LOCALES}")
    for key in (
        "MAX_QUERY_DAYS",
        "MAX_ICS_BYTES",
        "MAX_API_BODY_BYTES",
        "SESSION_LIFETIME_HOURS",
        "SESSION_IDLE_MINUTES",
        "LOGIN_MAX_FAILURES_PER_ACCOUNT",
        "LOGIN_MAX_FAILURES_PER_ADDRESS",
        "LOGIN_MAX_FAILURES_PER_DEVICE",
        "LOGIN_DEVICE_COOKIE_DAYS",
        "LOGIN_THROTTLE_MINUTES",
        "OIDC_TIMEOUT_SECONDS",
        "SCHEDULER_DISPATCH_SECONDS",
        "REMINDER_LEASE_SECONDS",
        "SYNC_SECONDS",
        "SYNC_BATCH",
        "SYNC_LEASE_SECONDS",
        "SYNC_TIMEOUT_SECONDS",
        "SYNC_POLL_MINUTES",
        "SYNC_FAILING_AFTER",
        "FETCH_CONNECTIONS",
    ):
        if not isinstance(config[key], int) or isinstance(config[key], bool) or config[key] <= 0:
            raise ConfigError(f"CALENDAR_APP_{key} must be a positive whole number")
    proxies = config["TRUSTED_PROXIES"]
    if not isinstance(proxies, int) or isinstance(proxies, bool) or not 0 <= proxies <= 5:
        raise ConfigError("CALENDAR_APP_TRUSTED_PROXIES must be a whole number from 0 to 5")
    # The browser forgets the cookie when the server-side session would end anyway.
    config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=config["SESSION_LIFETIME_HOURS"])
    if config["SCHEDULER"] not in ("off", "embedded"):
        raise ConfigError("CALENDAR_APP_SCHEDULER must be 'off' or 'embedded'")
    share = config["SYNC_MASS_CANCEL_SHARE"]
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
        raise ConfigError("CALENDAR_APP_SYNC_MASS_CANCEL_SHARE must be a number from 0 to 0.99")
    _validate_public_url(config)
    _validate_oidc(config)
    _validate_observability(config)
    _validate_twilio(config)


def _validate_twilio(config: dict[str, Any]) -> None:
    if not config["TWILIO_ACCOUNT_SID"]:
        return
    if not config["TWILIO_AUTH_TOKEN"]:
        raise ConfigError("CALENDAR_APP_TWILIO_AUTH_TOKEN is required with the account SID")
    if not config["TWILIO_FROM"] and not config["TWILIO_MESSAGING_SERVICE_SID"]:
        raise ConfigError(
            "set CALENDAR_APP_TWILIO_FROM (a number or sender name) or "
            "CALENDAR_APP_TWILIO_MESSAGING_SERVICE_SID"
        )
    if not config["PUBLIC_BASE_URL"]:
        raise ConfigError(
            "CALENDAR_APP_PUBLIC_BASE_URL is required with Twilio: delivery reports are "
            "signed over the public address"
        )


def _validate_public_url(config: dict[str, Any]) -> None:
    base = str(config["PUBLIC_BASE_URL"] or "").rstrip("/")
    parsed = urlsplit(base)
    if base and (parsed.scheme not in ("http", "https") or not parsed.netloc):
        raise ConfigError(
            f"CALENDAR_APP_PUBLIC_BASE_URL {base!r} is not an http(s) address, "
            "e.g. https://kalender.example.se"
        )
    config["PUBLIC_BASE_URL"] = base
    hsts = config["HSTS_MAX_AGE_SECONDS"]
    if not isinstance(hsts, int) or isinstance(hsts, bool) or hsts < 0:
        raise ConfigError("CALENDAR_APP_HSTS_MAX_AGE_SECONDS must be a whole number, 0 or more")
    # Derived, not a setting: the header every answer carries, or "" for none.
    config["STRICT_TRANSPORT_SECURITY"] = (
        f"max-age={hsts}; includeSubDomains" if parsed.scheme == "https" and hsts else ""
    )
    if config["SESSION_COOKIE_SECURE"] is None:
        config["SESSION_COOKIE_SECURE"] = parsed.scheme == "https"
    if config["SESSION_COOKIE_SECURE"]:
        # The __Host- prefix makes browsers refuse the cookie unless it is Secure, set for
        # the whole site and tied to this exact host.
        config["SESSION_COOKIE_NAME"] = "__Host-session"
        config["SESSION_COOKIE_PATH"] = "/"
        config["SESSION_COOKIE_DOMAIN"] = False


def _validate_oidc(config: dict[str, Any]) -> None:
    issuer = str(config["OIDC_ISSUER"] or "").rstrip("/")
    config["OIDC_ISSUER"] = issuer
    if not issuer:
        if not config["PASSWORD_LOGIN"]:
            raise ConfigError(
                "CALENDAR_APP_PASSWORD_LOGIN is off and CALENDAR_APP_OIDC_ISSUER is empty: "
                "nobody could sign in"
            )
        return
    if urlsplit(issuer).scheme not in ("http", "https"):
        raise ConfigError(f"CALENDAR_APP_OIDC_ISSUER {issuer!r} is not an http(s) address")
    if not config["OIDC_CLIENT_ID"]:
        raise ConfigError("CALENDAR_APP_OIDC_CLIENT_ID is required with CALENDAR_APP_OIDC_ISSUER")


def _validate_observability(config: dict[str, Any]) -> None:
    log_format = str(config["LOG_FORMAT"]).lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"CALENDAR_APP_LOG_FORMAT must be one of {LOG_FORMATS}")
    config["LOG_FORMAT"] = log_format
    level = str(config["LOG_LEVEL"]).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"CALENDAR_APP_LOG_LEVEL must be one of {LOG_LEVELS}")
    config["LOG_LEVEL"] = level
    if config["LOG_CONFIGURE"] not in (None, True, False):
        raise ConfigError("CALENDAR_APP_LOG_CONFIGURE must be true or false (or unset)")
    token = config["METRICS_TOKEN"]
    # The environment's values are read as JSON where they parse: a token of digits only
    # would arrive as a number, and a short one is guessable.
    if token and (not isinstance(token, str) or len(token) < METRICS_TOKEN_MIN_LENGTH):
        raise ConfigError(
            f"CALENDAR_APP_METRICS_TOKEN must be a random string of at least "
            f"{METRICS_TOKEN_MIN_LENGTH} characters (e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
