"""Sessions: throttled guessing, idle and absolute limits, log out everywhere, cookie flags,
and Strict-Transport-Security behind https."""

from __future__ import annotations

import re
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import func, select, update

from calendar_app import create_app
from calendar_app.clock import SystemClock
from calendar_app.config import ConfigError
from calendar_app.domain.errors import DomainError
from calendar_app.models import LoginFailure, UserSession
from calendar_app.services import accounts, feeds
from calendar_app.services.access import Actor
from tests.conftest import isolated_url
from tests.support.world import PASSWORD, build_world, log_in

POLICY = accounts.LoginPolicy(
    max_failures_per_account=3,
    max_failures_per_address=5,
    max_failures_per_device=2,
    throttle_window=timedelta(minutes=15),
)


def _post_login(client, username, password, addr="192.0.2.1"):
    return client.post(
        "/login",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": addr},
    )


def test_five_wrong_passwords_throttle_the_account_for_browsers_that_never_signed_in_to_it(
    client, session, now
):
    build_world(session, now)
    for _ in range(5):
        assert _post_login(client, "person", "wrong password").status_code == 401

    locked = _post_login(client, "person", PASSWORD)

    assert locked.status_code == 429
    assert "För många misslyckade försök. Vänta 15 minuter" in locked.get_data(as_text=True)
    assert 800 < int(locked.headers["Retry-After"]) <= 900
    # Someone else, from the same address, is not held up by it.
    assert _post_login(client, "caregiver", PASSWORD).status_code == 302


def test_an_unknown_account_is_throttled_like_a_real_one(session, now):
    for name in ("person", "no-such-user"):
        for _ in range(3):
            with pytest.raises(DomainError) as failed:
                accounts.log_in(session, name, "x", now=now, remote_addr=name, policy=POLICY)
            assert failed.value.code == "login.failed"
        with pytest.raises(accounts.LoginThrottled):
            accounts.log_in(session, name, "x", now=now, remote_addr=name, policy=POLICY)


def test_the_lock_lifts_when_the_window_has_passed(session, now):
    build_world(session, now)
    for _ in range(3):
        with pytest.raises(DomainError):
            accounts.log_in(session, "person", "x", now=now, policy=POLICY)
    with pytest.raises(accounts.LoginThrottled) as throttled:
        accounts.log_in(session, "person", PASSWORD, now=now + timedelta(minutes=14), policy=POLICY)
    assert throttled.value.retry_after == timedelta(minutes=1)

    token = accounts.log_in(
        session, "person", PASSWORD, now=now + timedelta(minutes=15, seconds=1), policy=POLICY
    )

    assert token
    # Success forgets the account's failures.
    assert session.scalar(select(func.count()).select_from(LoginFailure)) == 0


def test_one_address_guessing_many_accounts_is_stopped(session, now):
    build_world(session, now)
    for number in range(5):
        with pytest.raises(DomainError):
            accounts.log_in(session, f"guess{number}", "x", now=now, remote_addr="a", policy=POLICY)

    with pytest.raises(accounts.LoginThrottled):
        accounts.log_in(session, "person", PASSWORD, now=now, remote_addr="a", policy=POLICY)
    assert accounts.log_in(session, "person", PASSWORD, now=now, remote_addr="b", policy=POLICY)


def test_a_devices_failures_are_counted_apart_from_the_accounts(session, now):
    build_world(session, now)
    cookie = accounts.device_cookie("key", "person", now=now - timedelta(days=30))
    device = accounts.device_for("key", cookie, "person", now=now, policy=POLICY)
    assert device is not None
    for _ in range(3):
        with pytest.raises(DomainError):
            accounts.log_in(session, "person", "x", now=now, remote_addr="a", policy=POLICY)
    with pytest.raises(accounts.LoginThrottled):
        accounts.log_in(session, "person", PASSWORD, now=now, remote_addr="b", policy=POLICY)

    assert accounts.log_in(
        session, "person", PASSWORD, now=now, remote_addr="b", policy=POLICY, device=device
    )
    for _ in range(2):
        with pytest.raises(DomainError):
            accounts.log_in(session, "person", "x", now=now, policy=POLICY, device=device)
    with pytest.raises(accounts.LoginThrottled):
        accounts.log_in(session, "person", PASSWORD, now=now, policy=POLICY, device=device)


@pytest.mark.parametrize(
    ("cookie_for", "made_days_ago", "secret"),
    [("caregiver", 1, "key"), ("person", 181, "key"), ("person", 1, "another key")],
)
def test_a_device_cookie_proves_nothing_for_another_account_after_its_lifetime_or_key(
    now, cookie_for, made_days_ago, secret
):
    cookie = accounts.device_cookie(secret, cookie_for, now=now - timedelta(days=made_days_ago))

    assert accounts.device_for("key", cookie, "person", now=now, policy=POLICY) is None


def test_a_device_cookie_is_good_for_its_account_however_the_name_is_typed(now):
    cookie = accounts.device_cookie("key", "Person", now=now - timedelta(days=179))

    assert accounts.device_for("key", cookie, " PERSON ", now=now, policy=POLICY)


def _age_sessions(session, **columns):
    session.execute(update(UserSession).values(**columns))
    session.commit()


def test_a_session_unused_for_the_idle_limit_ends_with_a_message(client, session, now, clock):
    world = build_world(session, now)
    log_in(client, "person")
    long_ago = clock.now() - timedelta(minutes=31)
    _age_sessions(session, last_seen_utc=long_ago, created_utc=long_ago)

    page = client.get(f"/people/{world.person_id}/week", follow_redirects=True)

    assert "/login" in page.request.path
    assert "du inte har använt tjänsten på en stund" in page.get_data(as_text=True)
    ended = session.scalars(select(UserSession.ended_utc)).one()
    session.commit()
    assert ended is not None


def test_a_session_past_its_lifetime_ends_however_busy_it_is(client, session, now, clock):
    world = build_world(session, now)
    log_in(client, "person")
    _age_sessions(session, expires_utc=clock.now() - timedelta(seconds=1))

    page = client.get(f"/people/{world.person_id}/week", follow_redirects=True)

    assert "Din inloggning har gått ut" in page.get_data(as_text=True)
    assert client.get("/api/v1/me").status_code == 401


def test_the_idle_clock_is_written_at_most_once_a_minute(session, now):
    build_world(session, now)
    token = accounts.log_in(session, "person", PASSWORD, now=now)
    for seconds in (10, 30, 59):
        assert accounts.check_session(session, token, now=now + timedelta(seconds=seconds)).user
    assert session.scalars(select(UserSession.last_seen_utc)).one() == now
    accounts.check_session(session, token, now=now + timedelta(seconds=61))
    assert session.scalars(select(UserSession.last_seen_utc)).one() == now + timedelta(seconds=61)
    session.commit()


def test_log_out_everywhere_ends_the_sessions_on_other_devices(app, session, now):
    world = build_world(session, now)
    phone, laptop = app.test_client(), app.test_client()
    log_in(phone, "person")
    log_in(laptop, "person")
    log_in(app.test_client(), "caregiver")

    done = laptop.post("/logout/everywhere", follow_redirects=True)

    assert "Du är utloggad överallt (2 inloggningar avslutades)" in done.get_data(as_text=True)
    later = phone.get(f"/people/{world.person_id}/week", follow_redirects=True)
    assert "/login" in later.request.path and "Du har loggats ut" in later.get_data(as_text=True)
    open_sessions = session.scalar(
        select(func.count()).select_from(UserSession).where(UserSession.ended_utc.is_(None))
    )
    session.commit()
    assert open_sessions == 1  # the caregiver's


def test_the_account_page_lists_where_one_is_logged_in(app, session, now):
    build_world(session, now)
    first, second = app.test_client(), app.test_client()
    log_in(first, "helper_full")
    log_in(second, "helper_full")

    page = second.get("/account").get_data(as_text=True)

    assert "Där du är inloggad" in page and page.count("<td>lösenord</td>") == 2
    assert "Logga ut överallt" in page
    assert "Ladda ner mina uppgifter" not in page  # a helper has no data of her own here


def test_the_session_cookie_is_http_only_and_same_site(client, session, now):
    build_world(session, now)
    response = _post_login(client, "person", PASSWORD)
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    # The browser keeps it no longer than the server-side session lives (12 hours). Expires
    # is read by the browser against its own clock, so Flask writes it by the system clock.
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    assert timedelta(hours=11) < expires - SystemClock().now() <= timedelta(hours=12)


def test_behind_https_the_cookie_is_secure_and_host_bound(
    database_url, tmp_path, session, now, clock
):
    build_world(session, now)
    url = isolated_url(database_url, tmp_path)
    app = create_app(
        {
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "WTF_CSRF_ENABLED": False,
            "PUBLIC_BASE_URL": "https://kalender.example.se/",
        },
        clock=clock,
    )
    client = app.test_client()
    response = client.post(
        "/login", data={"username": "person", "password": PASSWORD}, base_url="https://localhost"
    )
    cookies = response.headers.getlist("Set-Cookie")
    (cookie,) = [c for c in cookies if c.startswith("__Host-session=")]
    assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
    assert client.get("/api/v1/me", base_url="https://localhost").status_code == 200
    app.extensions["engine"].dispose()


HTTPS = {"PUBLIC_BASE_URL": "https://kalender.example.se"}
HSTS = "max-age=31536000; includeSubDomains"


def _answers(app, session, now) -> dict[str, object]:
    """One answer of each kind: pages, errors, static files, sign-in, and feed fetches."""
    world = build_world(session, now)
    made = feeds.create_feed(session, Actor.operator(), world.person_id, level="full", now=now)
    client = app.test_client()
    fetched = client.get(f"/feed/{made.token}.ics")
    return {
        "login page": client.get("/login"),
        "not found": client.get("/no-such-page"),
        "static file": client.get("/static/style.css"),
        "failed sign-in": client.post("/login", data={"username": "x", "password": "y"}),
        "feed": fetched,
        "feed not modified": client.get(
            f"/feed/{made.token}.ics", headers={"If-None-Match": fetched.headers["ETag"]}
        ),
        "feed missing": client.get("/feed/no-such-token.ics"),
        "api": client.get("/api/v1/me"),
    }


@pytest.mark.parametrize("app_config", [HTTPS])
def test_every_answer_says_https_only_when_the_public_address_is_https(app, session, now):
    answers = _answers(app, session, now)

    assert answers["feed"].status_code == 200
    assert answers["feed not modified"].status_code == 304
    for kind, answer in answers.items():
        assert answer.headers.get("Strict-Transport-Security") == HSTS, kind


def test_no_answer_says_https_only_when_the_public_address_is_http(app, session, now):
    answers = _answers(app, session, now)

    for kind, answer in answers.items():
        assert "Strict-Transport-Security" not in answer.headers, kind
        assert answer.headers["X-Content-Type-Options"] == "nosniff", kind


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"PUBLIC_BASE_URL": "kalender.example.se"}, "PUBLIC_BASE_URL"),
        ({"PASSWORD_LOGIN": False}, "nobody could sign in"),
        ({"OIDC_ISSUER": "https://broker.example.se"}, "OIDC_CLIENT_ID"),
        ({"SESSION_IDLE_MINUTES": 0}, "SESSION_IDLE_MINUTES"),
        ({"LOGIN_MAX_FAILURES_PER_ACCOUNT": True}, "LOGIN_MAX_FAILURES_PER_ACCOUNT"),
        ({"LOGIN_MAX_FAILURES_PER_DEVICE": 0}, "LOGIN_MAX_FAILURES_PER_DEVICE"),
        ({"LOGIN_DEVICE_COOKIE_DAYS": "a year"}, "LOGIN_DEVICE_COOKIE_DAYS"),
        ({"HSTS_MAX_AGE_SECONDS": -1}, "HSTS_MAX_AGE_SECONDS"),
    ],
)
def test_settings_that_cannot_work_stop_start_up_with_a_clear_message(settings, message):
    with pytest.raises(ConfigError, match=message):
        create_app({"DATABASE_URL": "sqlite://", **settings})


@pytest.mark.parametrize("app_config", [{"TRUSTED_PROXIES": 1}])
def test_behind_a_trusted_proxy_failures_count_per_real_client(client, session, now):
    build_world(session, now)
    for number in range(5):
        client.post(
            "/login",
            data={"username": f"guess{number}", "password": "x"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
    addresses = set(session.scalars(select(LoginFailure.remote_addr)))
    session.commit()
    assert addresses == {"203.0.113.9"}
