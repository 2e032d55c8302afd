import pytest

from calendar_app import create_app
from calendar_app.config import ConfigError
from calendar_app.domain import phone
from calendar_app.domain.errors import DomainError


@pytest.mark.parametrize("text", ["070-123 45 67", "0701234567", "+46 70 123 45 67"])
def test_swedish_mobile_numbers_become_e164(text):
    assert phone.to_e164(text) == "+46701234567"


@pytest.mark.parametrize("text", ["12", "not a number", "+46 12"])
def test_invalid_phone_numbers_are_refused(text):
    with pytest.raises(DomainError) as info:
        phone.to_e164(text)
    assert info.value.code == "phone.invalid"


def test_masked_phone_keeps_only_the_last_two_digits():
    assert phone.masked("+46701234567") == "+46*******67"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not a url", "is not a database URL"),
        ("mysql://root@localhost/test", "supported are sqlite, postgresql"),
        ("postgresql+psycopg2://u@h/d", "psycopg driver"),
    ],
)
def test_a_bad_database_url_stops_start_up_with_a_clear_message(url, fragment, tmp_path):
    with pytest.raises(ConfigError) as info:
        create_app({"DATABASE_URL": url})
    assert fragment in str(info.value)


def test_a_bad_database_url_from_the_environment_stops_start_up(monkeypatch):
    monkeypatch.setenv("CALENDAR_APP_DATABASE_URL", "oracle://nobody@nowhere/db")
    with pytest.raises(ConfigError, match="CALENDAR_APP_DATABASE_URL"):
        create_app()


def test_settings_come_from_prefixed_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("CALENDAR_APP_DATABASE_URL", f"sqlite:///{tmp_path}/x.sqlite3")
    monkeypatch.setenv("CALENDAR_APP_MAX_QUERY_DAYS", "30")
    app = create_app()
    assert app.config["MAX_QUERY_DAYS"] == 30
    assert app.config["DATABASE_URL"].database.endswith("x.sqlite3")


def test_an_unknown_default_time_zone_stops_start_up(tmp_path):
    with pytest.raises(ConfigError, match="IANA"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "DEFAULT_TIMEZONE": "Mars/Base"})


def test_sealed_source_secrets_survive_a_restart_of_the_embedded_default(tmp_path, monkeypatch):
    from flask import Flask

    from calendar_app import config

    monkeypatch.delenv("CALENDAR_APP_SECRET_KEY", raising=False)
    monkeypatch.delenv("CALENDAR_APP_SOURCE_SECRET_KEY", raising=False)
    keys = []
    for _ in range(2):  # two starts of the service
        app = Flask("restart", instance_path=str(tmp_path))
        config.load(app, {"DATABASE_URL": "sqlite://"})
        keys.append(app.config["SOURCE_SECRET_KEY"])
    assert keys[0] == keys[1] and len(keys[0]) == 64
    assert (tmp_path / "source-secret.key").stat().st_mode & 0o777 == 0o600
    app = Flask("configured", instance_path=str(tmp_path))
    config.load(app, {"DATABASE_URL": "sqlite://", "SECRET_KEY": "production key"})
    assert app.config["SOURCE_SECRET_KEY"] == "production key"


@pytest.mark.parametrize("share", [-0.1, 1, "half", True])
def test_a_mass_cancel_share_outside_zero_to_one_stops_start_up(share):
    with pytest.raises(ConfigError, match="SYNC_MASS_CANCEL_SHARE"):
        create_app({"DATABASE_URL": "sqlite://", "SYNC_MASS_CANCEL_SHARE": share})


@pytest.mark.parametrize("connections", [0, -2, "many", True])
def test_a_feed_pool_without_connections_stops_start_up(connections):
    with pytest.raises(ConfigError, match="FETCH_CONNECTIONS"):
        create_app({"DATABASE_URL": "sqlite://", "FETCH_CONNECTIONS": connections})
