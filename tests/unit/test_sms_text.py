"""Reminder texts: Swedish, one GSM-7 segment where possible, segments counted right."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from calendar_app.domain.sms import NEUTRAL_UNIT, VisitLine, compose, segments

SE = ZoneInfo("Europe/Stockholm")
TEN = datetime(2026, 12, 2, 9, tzinfo=UTC)  # onsdag 2 december kl. 10.00


def test_a_reminder_says_when_where_and_whom_to_call_in_one_segment():
    message = compose(
        [VisitLine(TEN, "Vuxenpsykiatrin Växjö", "Sigfridsvägen 9", unit_phone="0470-58 60 00")],
        zone=SE,
        link="https://kal.example.se/b/12",
    )
    assert message.text == (
        "Påminnelse: ons 2 dec kl. 10.00 Vuxenpsykiatrin Växjö, Sigfridsvägen 9, "
        "tel 0470-58 60 00. https://kal.example.se/b/12"
    )
    assert (message.segments.encoding, message.segments.count) == ("GSM-7", 1)


def test_a_phone_visit_with_an_interpreter_says_so_and_gives_no_address():
    message = compose(
        [VisitLine(TEN, NEUTRAL_UNIT, "Sigfridsvägen 9", mode="phone", interpreter=True)],
        zone=SE,
    )
    assert (
        message.text == "Påminnelse: ons 2 dec kl. 10.00 din vårdgivare, telefonbesök, tolk bokad."
    )


def test_several_visits_on_one_day_share_one_message():
    message = compose(
        [
            VisitLine(TEN, "Vuxenpsykiatrin Växjö", "Sigfridsvägen 9"),
            VisitLine(TEN.replace(hour=13), "Boendestöd Växjö kommun", "Hemma"),
        ],
        zone=SE,
        for_name="Alva",
    )
    assert message.text == (
        "Påminnelse för Alva ons 2 dec: kl. 10.00 Vuxenpsykiatrin Växjö, Sigfridsvägen 9; "
        "kl. 14.00 Boendestöd Växjö kommun, Hemma."
    )
    assert message.segments.count == 1


def test_details_are_dropped_least_important_first_to_fit_one_segment():
    line = VisitLine(
        TEN,
        "Vuxenpsykiatrin Växjö mottagning för unga vuxna",
        "Sigfridsvägen 9, plan 2, ingång C",
        interpreter=True,
        unit_phone="0470-58 60 00",
        cancellation="Avboka senast 24 timmar före, annars debiteras 400 kr",
    )
    message = compose([line], zone=SE, link="https://kal.example.se/b/12")
    assert message.segments.count == 1
    assert message.dropped[:2] == ("cancellation", "unit_phone")
    assert "Sigfridsvägen 9" in message.text or "place" in message.dropped


def test_swedish_letters_are_gsm_7_but_an_emoji_or_a_curly_quote_is_handled():
    assert segments("åäöÅÄÖé" * 20 + "x" * 20) == segments("a" * 160)
    assert segments("a" * 161).count == 2 and segments("a" * 306).count == 2
    assert segments("a" * 307).count == 3
    assert segments("€" * 80).units == 160 and segments("€" * 81).count == 2
    emoji = segments("Hej 🙂")
    assert emoji.encoding == "UCS-2" and emoji.units == 6
    assert segments("ö" * 70 + "🙂").count == 2
    # A typographic dash or quote from a unit's name is sent as its GSM stand-in.
    plain = compose([VisitLine(TEN, "Mottagning “Norr” – Växjö")], zone=SE)
    assert plain.segments.encoding == "GSM-7" and '"Norr" - Växjö' in plain.text


def test_an_all_day_booking_says_the_whole_day():
    message = compose([VisitLine(TEN, "Boendestöd Växjö kommun", all_day=True)], zone=SE)
    assert message.text == "Påminnelse: ons 2 dec (hela dagen) Boendestöd Växjö kommun."


def test_the_travel_reminder_asks_to_book_the_journey():
    message = compose([VisitLine(TEN, "Vuxenpsykiatrin Växjö")], zone=SE, transport=True)
    assert message.text.startswith("Boka resa: ons 2 dec kl. 10.00")
