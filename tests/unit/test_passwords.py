"""Password strength: long enough, and not among the first guesses an attacker tries."""

from __future__ import annotations

import pytest

from calendar_app.demo import LOGINS
from calendar_app.domain.errors import DomainError
from calendar_app.services.accounts import check_password, hash_password


@pytest.mark.parametrize("password", ["12345678", "kort", "123456789", "sommar26", "", "ab cd efg"])
def test_a_password_under_ten_characters_is_refused(password):
    with pytest.raises(DomainError) as refused:
        check_password(password)

    assert refused.value.code == "password.too_short"


@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "1234567890",
        "qwertyuiop",
        "aaaaaaaaaaaa",
        "abc123abc123",
        "sommar2026",
        "Sommar2026!",
        "vinter2025",
        "Lösenord2026",
        "losenord123",
        "hejsan12345",
        "Kalender123",
        "p@ssw0rd2026",
    ],
)
def test_a_common_or_patterned_password_is_refused_as_weak(password):
    with pytest.raises(DomainError) as refused:
        check_password(password)

    assert refused.value.code == "password.weak"


def test_the_accounts_own_names_make_a_password_weak():
    check_password("Lindqvist1990")

    with pytest.raises(DomainError) as refused:
        check_password("Lindqvist1990", context=("alva", "Alva Lindqvist"))

    assert refused.value.code == "password.weak"


@pytest.mark.parametrize(
    "password",
    ["ett långt lösenord", "blåbär i oktoberdimma", "sam tar tåget", "Tr4ns-Kaffe-Moln"],
)
def test_a_password_of_words_that_belong_together_only_for_you_is_accepted(password):
    check_password(password, context=("ingrid", "Ingrid Förvaltare"))


def test_a_passphrase_of_any_length_is_accepted():
    check_password("en lång mening om en björk vid sjön " * 300)


@pytest.mark.parametrize("username", sorted(LOGINS))
def test_the_demo_accounts_passwords_pass_the_check(username):
    """The demo's accounts are made through the same check: it must not stop the demo."""
    password, _role, display_name = LOGINS[username]

    assert hash_password(password, context=(username, display_name)).startswith("$argon2id$")
