"""Settings: the one place they live.

Order: built-in defaults -> ``CALENDAR_APP_*`` environment variables (Flask's
``from_prefixed_env``) -> test overrides -> :func:`validate`. Nothing else in the
package reads ``os.environ``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SUPPORTED_DATABASES = ("sqlite", "postgresql")
SUPPORTED_LOCALES = ("sv", "en")


class ConfigError(Exception):
    """A setting is missing or wrong; start-up stops with this message."""


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
        "SESSION_LIFETIME_HOURS": 12,
    }


def load(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill ``app.config`` from defaults, environment and overrides, then validate it."""
    app.config.from_mapping(defaults(app.instance_path))
    app.config.from_prefixed_env(prefix="CALENDAR_APP")
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config["SECRET_KEY"]:
        # A per-process key keeps the embedded default working; production sets one so that
        # sessions survive restarts and several workers agree.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    validate(app.config)


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
    for key in ("MAX_QUERY_DAYS", "MAX_ICS_BYTES", "SESSION_LIFETIME_HOURS"):
        if not isinstance(config[key], int) or config[key] <= 0:
            raise ConfigError(f"CALENDAR_APP_{key} must be a positive whole number")
