from datetime import date
from pathlib import Path

import pytest

from calendar_app.domain import personnummer
from calendar_app.domain.errors import DomainError
from tests.conftest import CORPUS

TODAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    "text",
    ["19900101-2385", "199001012385", "900101-2385", " 199001012385 "],
)
def test_every_accepted_form_is_stored_as_twelve_digits(text):
    assert personnummer.parse(text, today=TODAY) == "199001012385"


def test_plus_sign_means_a_hundred_years_or_older():
    # 1890-01-01, Skatteverket test number 189001019802
    assert personnummer.parse("900101+9802", today=TODAY) == "189001019802"


def test_short_form_takes_the_latest_century_not_in_the_future():
    # 20011223-2384 is a Skatteverket test number
    assert personnummer.parse("011223-2384", today=TODAY) == "200112232384"
    assert personnummer.parse("011223+2384", today=TODAY) == "190112232384"


def test_samordningsnummer_day_plus_sixty_is_accepted():
    # day 61 = the 1st; check digit computed for 9001612381
    digits = "900161238"
    check = next(d for d in range(10) if personnummer.luhn_ok(digits + str(d)))
    assert personnummer.parse(f"19{digits}{check}", today=TODAY) == f"19{digits}{check}"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("199001012384", "personnummer.checksum"),
        ("19900101-238", "personnummer.format"),
        ("1990-01-01-2385", "personnummer.format"),
        ("19901301-2385", "personnummer.checksum"),
        ("19900230-0000", "personnummer.date"),
        ("20991231-0000", "personnummer.date"),
        ("19900101+2385", "personnummer.format"),
    ],
)
def test_bad_numbers_are_refused_with_a_code_and_without_repeating_the_number(text, code):
    if code == "personnummer.date":
        # make the check digit right so that only the date is wrong
        digits = text.replace("-", "")[2:11]
        check = next(d for d in range(10) if personnummer.luhn_ok(digits + str(d)))
        text = text.replace("-", "")[:11] + str(check)
    with pytest.raises(DomainError) as info:
        personnummer.parse(text, today=TODAY)
    assert info.value.code == code
    assert text.replace("-", "")[-4:] not in info.value.message


def _corpus_numbers(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip().isdigit() and len(line.strip()) == 12
    ]


def test_every_skatteverket_test_number_in_the_corpus_is_valid():
    files = sorted((CORPUS / "personnummer").glob("*"))
    numbers = [n for f in files for n in _corpus_numbers(f)]
    assert len(numbers) > 100
    for number in numbers:
        assert personnummer.parse(number, today=TODAY) == number


def test_masked_form_hides_the_last_four_digits():
    assert personnummer.masked("199001012385") == "19900101-****"
