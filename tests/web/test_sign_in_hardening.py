"""Sign-in hardening: redirects stay on this site, a stranger's guesses do not lock the
person out of her own browser, and passwords must be hard to guess."""

from __future__ import annotations

import base64
import html
import re
from datetime import timedelta
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import func, select

from calendar_app.cli import main
from calendar_app.models import User
from calendar_app.services import accounts
from calendar_app.services.settings import invite_helper
from tests.support.world import PASSWORD, actor, build_world

HOME = "/"
# next= values that lead off-site after sign-in if taken at their word: a browser drops
# tabs and newlines, reads a backslash as a slash and trims spaces, so several of them are
# "//evil.example" to it.
HOSTILE_TARGETS = [
    "/\x09/evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/%09/evil.example",
    " //evil.example",
    "https:evil.example",
    "/\r\n/evil.example",
    "//evil.example",
    "javascript:alert(1)",
    "https://evil.example/people/1/week",
    "/\n/evil.example",
    "\x0c//evil.example",
    "\x01//evil.example",
    "/%5Cevil.example",
    "/%2F/evil.example",
    "//%09evil.example",
    "evil.example",
]
GOOD_TARGETS = [
    "/people/1/week?start=2026-12-01",
    "/account",
    "/people/1/agenda?q=%C3%A5terbes%C3%B6k",
]


def browser_destination(location: str, origin: str = "http://localhost/") -> str:
    """The host a browser goes to for a Location header (WHATWG URL parsing, roughly)."""
    read = re.sub(r"[\t\n\r]", "", location.strip("".join(map(chr, range(0x21)))))
    return urlsplit(urljoin(origin, read.replace("\\", "/"))).netloc


def _login_form_action(page: str) -> str:
    action = re.search(r'<form method="post" class="login" action="([^"]+)"', page)
    assert action is not None
    return html.unescape(action.group(1))


def _sign_in_through_the_form(client, next_value: str):
    page = client.get("/login", query_string={"next": next_value}).get_data(as_text=True)
    return client.post(_login_form_action(page), data={"username": "person", "password": PASSWORD})


# --- where a sign-in leads --------------------------------------------------------------------


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_a_password_sign_in_never_leads_off_site_whatever_next_says(app, session, now, target):
    build_world(session, now)

    signed_in = _sign_in_through_the_form(app.test_client(), target)

    assert signed_in.status_code == 302
    assert signed_in.location == HOME
    assert browser_destination(signed_in.location) == "localhost"


@pytest.mark.parametrize("target", GOOD_TARGETS)
def test_a_password_sign_in_leads_back_to_the_page_on_this_site_it_came_from(
    app, session, now, target
):
    build_world(session, now)

    signed_in = _sign_in_through_the_form(app.test_client(), target)

    assert signed_in.status_code == 302 and signed_in.location == target


def test_a_page_that_needs_sign_in_is_where_the_sign_in_leads(client, world):
    asked = client.get(f"/people/{world.person_id}/week")
    page = client.get(asked.location).get_data(as_text=True)

    signed_in = client.post(
        _login_form_action(page), data={"username": "person", "password": PASSWORD}
    )

    assert signed_in.location == f"/people/{world.person_id}/week"


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
@pytest.mark.parametrize(("path", "field"), [("/language", "lang"), ("/easy-read", "easy")])
def test_the_language_and_easy_read_switches_stay_on_this_site(client, path, field, target):
    value = "en" if field == "lang" else "on"

    switched = client.post(path, data={field: value, "next": target})

    assert switched.status_code == 302 and switched.location == HOME


def test_the_language_switch_returns_to_the_page_it_was_made_on(client):
    switched = client.post("/language", data={"lang": "en", "next": GOOD_TARGETS[0]})

    assert switched.location == GOOD_TARGETS[0]


# --- failed sign-ins: the stranger is slowed down, the person gets in ----------------------

STRANGERS = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"]
HER_ADDRESS = "203.0.113.50"


def _post(client, username, password, addr):
    return client.post(
        "/login",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": addr},
    )


def _her_browser(app):
    """The person's own browser: it has signed in before, and signed out."""
    browser = app.test_client()
    assert _post(browser, "person", PASSWORD, HER_ADDRESS).status_code == 302
    browser.post("/logout")
    return browser


def _guess(app, username="person", times=12):
    """A stranger's wrong guesses from several addresses, none with a device cookie."""
    for number in range(times):
        _post(app.test_client(), username, f"guess {number}", STRANGERS[number % len(STRANGERS)])


def test_a_strangers_guesses_do_not_keep_the_person_out_of_her_own_browser(app, session, now):
    build_world(session, now)
    browser = _her_browser(app)
    _guess(app)

    signed_in = _post(browser, "person", PASSWORD, HER_ADDRESS)

    assert signed_in.status_code == 302
    assert browser.get("/api/v1/me").get_json()["username"] == "person"


def test_the_stranger_is_still_throttled_on_the_account_even_with_the_right_password(
    app, session, now
):
    build_world(session, now)
    _her_browser(app)
    _guess(app)

    stranger = _post(app.test_client(), "person", PASSWORD, "198.51.100.99")

    assert stranger.status_code == 429
    assert "För många misslyckade försök. Vänta 15 minuter" in stranger.get_data(as_text=True)
    assert 800 < int(stranger.headers["Retry-After"]) <= 900


@pytest.mark.parametrize("app_config", [{"LOGIN_MAX_FAILURES_PER_ADDRESS": 6}])
def test_one_address_trying_many_accounts_is_throttled(app, session, now):
    build_world(session, now)
    for number in range(6):
        _post(app.test_client(), f"guess{number}", "wrong", STRANGERS[0])

    throttled = _post(app.test_client(), "caregiver", PASSWORD, STRANGERS[0])

    assert throttled.status_code == 429 and "Retry-After" in throttled.headers
    assert _post(app.test_client(), "caregiver", PASSWORD, STRANGERS[1]).status_code == 302


@pytest.mark.parametrize("app_config", [{"LOGIN_MAX_FAILURES_PER_ADDRESS": 6}])
def test_guessing_from_her_own_address_does_not_keep_her_out_of_her_own_browser(app, session, now):
    """A shared address (a home's or a clinic's network): the address's limit stops the
    guesser there, while her browser, known to her account, still gets in."""
    build_world(session, now)
    browser = _her_browser(app)
    for number in range(6):
        _post(app.test_client(), f"guess{number}", "wrong", HER_ADDRESS)
    assert _post(app.test_client(), "caregiver", PASSWORD, HER_ADDRESS).status_code == 429

    assert _post(browser, "person", PASSWORD, HER_ADDRESS).status_code == 302


def test_her_own_browser_has_a_limit_of_its_own(app, session, now):
    build_world(session, now)
    browser = _her_browser(app)
    for _ in range(5):
        assert _post(browser, "person", "mistyped", HER_ADDRESS).status_code == 401

    throttled = _post(browser, "person", PASSWORD, HER_ADDRESS)

    assert throttled.status_code == 429
    assert "För många misslyckade försök" in throttled.get_data(as_text=True)
    # Her mistakes were counted on her browser, not against the account.
    assert _post(app.test_client(), "person", PASSWORD, STRANGERS[0]).status_code == 302


def _cookie_value(client, name="device") -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None
    return cookie.value


def _forged_cookies(app, now) -> dict[str, str]:
    """Device cookies that must exempt nobody from the account's limit."""
    caregiver = app.test_client()
    assert _post(caregiver, "caregiver", PASSWORD, HER_ADDRESS).status_code == 302
    own = _cookie_value(caregiver)
    expired_at = now - timedelta(days=181)
    for_person = accounts.device_cookie("not-our-secret", "person", now=now)
    return {
        "another account's": own,
        "signed with another key": for_person,
        # The caregiver's signature under a payload that names the person.
        "altered": for_person.split(".")[0] + "." + own.split(".")[1],
        "expired": accounts.device_cookie("test-secret", "person", now=expired_at),
        "made up": "person",
    }


def test_a_forged_expired_or_other_accounts_device_cookie_gives_no_exemption(app, session, now):
    build_world(session, now)
    cookies = _forged_cookies(app, now)
    _guess(app)
    for kind, value in cookies.items():
        browser = app.test_client()
        browser.set_cookie("device", value)

        answer = _post(browser, "person", PASSWORD, HER_ADDRESS)

        assert answer.status_code == 429, kind


def test_a_valid_device_cookie_is_what_lets_her_in(app, session, now):
    """The counterpart of the forged ones: the same request with a good cookie passes."""
    build_world(session, now)
    _guess(app)
    browser = app.test_client()
    browser.set_cookie("device", accounts.device_cookie("test-secret", "person", now=now))

    assert _post(browser, "person", PASSWORD, HER_ADDRESS).status_code == 302


def test_the_throttle_answers_the_same_for_an_account_that_does_not_exist(app, session, now):
    build_world(session, now)
    answers = {}
    for name in ("person", "no-such-person"):
        _guess(app, name, times=5)
        answer = _post(app.test_client(), name, "one more", "198.51.100.99")
        text = answer.get_data(as_text=True)
        answers[name] = (answer.status_code, answer.headers["Retry-After"], text.count("Vänta"))

    assert answers["person"] == answers["no-such-person"]
    assert answers["person"][0] == 429


def test_the_device_cookie_is_http_only_strict_and_long_lived(app, session, now):
    build_world(session, now)

    signed_in = _post(app.test_client(), "person", PASSWORD, HER_ADDRESS)

    (cookie,) = [c for c in signed_in.headers.getlist("Set-Cookie") if c.startswith("device=")]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert f"Max-Age={180 * 24 * 3600}" in cookie
    # Signed, and readable by whoever holds the browser: it does not spell out the account.
    payload = cookie.split(";")[0].removeprefix("device=").split(".")[0]
    assert b"person" not in base64.urlsafe_b64decode(payload + "==")


@pytest.mark.parametrize("app_config", [{"PUBLIC_BASE_URL": "https://kalender.example.se"}])
def test_behind_https_the_device_cookie_is_secure_and_host_bound(app, session, now):
    build_world(session, now)
    client = app.test_client()

    signed_in = client.post(
        "/login",
        data={"username": "person", "password": PASSWORD},
        base_url="https://localhost",
    )

    cookies = signed_in.headers.getlist("Set-Cookie")
    (cookie,) = [c for c in cookies if c.startswith("__Host-device=")]
    assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie


# --- passwords where they are set -------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("12345678", "password.too_short"),
        ("password1234", "password.weak"),
        ("sommar2026", "password.weak"),
        ("Ingrid2026!", "password.weak"),
    ],
)
def test_user_add_refuses_a_weak_password_with_a_code_and_makes_nothing(
    app, session, password, code
):
    result = app.test_cli_runner().invoke(
        main,
        ["user", "add", "ingrid", "--name", "Ingrid", "--role", "admin", "--password", password],
    )

    assert result.exit_code == 1
    assert f"error: {code}: " in result.output
    assert session.scalar(select(func.count()).select_from(User)) == 0
    session.commit()


def test_user_add_takes_a_password_that_is_hard_to_guess(app, session):
    result = app.test_cli_runner().invoke(
        main,
        ["user", "add", "ingrid", "--name", "Ingrid", "--role", "admin"]
        + ["--password", "blåbär i oktoberdimma"],
    )

    assert result.exit_code == 0, result.output


def test_a_helper_cannot_accept_an_invitation_with_a_weak_password(app, client, session, now):
    world = build_world(session, now)
    code = invite_helper(
        session,
        actor(session, "person"),
        world.person_id,
        name="Sam",
        contact="sam@example.se",
        view_level="busy",
        receives_reminders=False,
        manages_settings=False,
        valid_until=None,
        basis="narstaende",
        now=now,
    ).code

    refused = client.post(
        "/invitation",
        data={"code": code, "username": "sam", "display_name": "Sam", "password": "sam12345678"},
    )
    accepted = client.post(
        "/invitation",
        data={"code": code, "username": "sam", "display_name": "Sam", "password": "sam tar tåget"},
    )

    assert refused.status_code == 400
    assert accepted.status_code == 302
    assert session.scalars(select(User.username).where(User.username == "sam")).one() == "sam"
    session.commit()
