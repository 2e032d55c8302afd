"""Dates and times the Swedish way ("tisdag 14 april kl. 10.00"), or the English way."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date
from flask import Flask, current_app
from flask_babel import get_locale

from calendar_app.web.messages import (
    audit_action,
    clash_text,
    error_text,
    reminder_state_text,
    rule_text,
    source_state_text,
    suggestion_text,
)


def _locale() -> str:
    return str(get_locale() or "sv")


def long_date(value: date) -> str:
    """'tisdag 14 april' / 'Tuesday 14 April'."""
    return format_date(value, "EEEE d MMMM", locale=_locale())


def month_name(value: date) -> str:
    """'november 2026' / 'November 2026'."""
    return format_date(value, "LLLL yyyy", locale=_locale())


def clock(value: datetime, zone: str) -> str:
    """'kl. 10.00' in Swedish, '10:00' in English, in the person's zone."""
    local = value.astimezone(ZoneInfo(zone))
    if _locale() == "sv":
        return f"kl. {local:%H.%M}"
    return f"{local:%H:%M}"


def time_only(value: datetime, zone: str) -> str:
    """'10.00' / '10:00'."""
    local = value.astimezone(ZoneInfo(zone))
    return f"{local:%H.%M}" if _locale() == "sv" else f"{local:%H:%M}"


def moment(value: datetime, zone: str | None = None) -> str:
    """'måndag 23 november kl. 09.00' in ``zone`` (the service's default zone if none)."""
    zone = zone or current_app.config["DEFAULT_TIMEZONE"]
    return f"{long_date(value.astimezone(ZoneInfo(zone)).date())} {clock(value, zone)}"


def since(value: datetime, zone: str) -> str:
    """'10.42' today, else 'lördag 21 november kl. 10.42': when something last worked."""
    local = ZoneInfo(zone)
    now = current_app.extensions["clock"].now()
    if value.astimezone(local).date() == now.astimezone(local).date():
        return time_only(value, zone)
    return moment(value, zone)


def init_app(app: Flask) -> None:
    """Make the formatters available in templates."""
    app.jinja_env.filters["long_date"] = long_date
    app.jinja_env.filters["month_name"] = month_name
    app.jinja_env.filters["tz"] = ZoneInfo
    app.jinja_env.filters["moment"] = moment
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["audit_action"] = audit_action
    app.jinja_env.globals["clash_text"] = clash_text
    app.jinja_env.globals["suggestion_text"] = suggestion_text
    app.jinja_env.globals["rule_text"] = rule_text
    app.jinja_env.globals["reminder_state_text"] = reminder_state_text
    app.jinja_env.globals["clock"] = clock
    app.jinja_env.globals["time_only"] = time_only
    app.jinja_env.globals["since"] = since
    app.jinja_env.globals["error_text"] = error_text
    app.jinja_env.globals["source_state_text"] = source_state_text
