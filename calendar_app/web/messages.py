"""Stable error codes turned into words for people, in the visitor's language."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l

_MESSAGES = {
    "reminder.rule": _l("The reminder rule is not possible: check the numbers."),
    "reminder.time": _l("Write the time as HH.MM, for example 18.00."),
    "reminder.quiet": _l("Quiet hours need both a start and an end."),
    "reminder.too_many": _l("You can have at most 10 reminder rules."),
    "reminder.not_found": _l("No such reminder rule."),
    "reminder.no_phone": _l("There is no mobile number to send to."),
    "token.name": _l("Give the key a name of 1 to 100 characters."),
    "token.scope_missing": _l("Choose at least one permission."),
    "token.scope_unknown": _l("Unknown permission."),
    "token.not_found": _l("No such key."),
    "photo.empty": _l("Choose a picture file."),
    "photo.too_large": _l("The picture is too large: at most 5 MB and 40 megapixels."),
    "photo.too_small": _l("The picture is too small to show a face: at least 16 pixels."),
    "photo.not_image": _l("The file is not a picture we can read (JPEG, PNG, GIF or WebP)."),
    "feed.level": _l("Choose what the feed shows: everything, time and place, or busy only."),
    "feed.label": _l("Give the calendar a name of at most 100 characters."),
    "feed.too_many": _l("You have 10 feeds. Stop one you no longer use before making a new one."),
    "unit.not_found": _l("No such unit."),
    "person.deleted": _l("The person's data has been deleted."),
    "ics.too_large": _l("The file is too large."),
    "ics.empty": _l("The file is empty."),
    "ics.not_calendar": _l("The file is not a calendar file (iCalendar, .ics)."),
    "ics.encoding": _l("The file's text encoding is broken."),
    "ics.damaged": _l("The file is damaged and could not be read. Nothing was imported."),
    "ics.no_calendar": _l("The file holds data outside a calendar. Nothing was imported."),
    "ics.mixed_methods": _l("The file mixes different kinds of calendar messages."),
    "ics.method_unsupported": _l("The file is a calendar reply, not a list of bookings."),
    "ics.nothing_usable": _l("No event in the file could be read. Nothing was imported."),
    "event.damaged": _l("the event is damaged"),
    "event.no_start": _l("the event has no start time"),
    "event.end_before_start": _l("the event ends before it starts"),
    "event.unknown_tzid": _l("the event uses an unknown time zone"),
    "event.rrule_invalid": _l("the event's repeat rule cannot be used"),
    "event.rrule_too_frequent": _l("the event repeats more often than daily"),
    "event.too_many_occurrences": _l("the event repeats too often to be shown"),
    "event.date_out_of_range": _l("the event lies before 1900 or after 2199"),
    "range.invalid": _l("The end date must come after the start date."),
    "range.too_long": _l("Choose a period of at most 400 days."),
    "provider.kind_mismatch": _l("A unit with that name exists with another kind."),
    "provider.name_missing": _l("Write the name of the unit."),
    "source.builtin": _l("That source name is reserved."),
    "source.url": _l("Write the calendar's address as https://… or webcal://…."),
    "source.address_blocked": _l(
        "The address leads to an internal or local network, which is not allowed."
    ),
    "source.unreachable": _l("The calendar's server could not be reached."),
    "source.timeout": _l("The calendar's server did not answer in time."),
    "source.http": _l("The calendar's server answered with an error."),
    "source.redirects": _l("The calendar's address redirects too many times."),
    "source.not_calendar": _l("The address gives a web page, not a calendar."),
    "source.secret": _l("The stored address or password cannot be read; add the source again."),
    "source.auth": _l("The server refused the user name, password or access token."),
    "source.protocol": _l("The server's answer could not be read."),
    "source.not_fhir": _l("The address does not lead to a FHIR server."),
    "fhir.version": _l("The server speaks another FHIR version than R4, which cannot be read."),
    "fhir.patient_not_found": _l("The unit's system has no patient with this personnummer."),
    "fhir.patient_ambiguous": _l("The unit's system has several patients with this personnummer."),
    "fhir.paging": _l("The unit's system gave an incomplete list of bookings."),
    "fhir.too_many": _l("The unit's system lists more bookings than can be read at once."),
    "rivta.fault": _l("The booking system answered with an error."),
    "rivta.tls": _l("The secure connection to the national platform failed (certificate)."),
    "rivta.contract": _l("The national scheduling service is not set up on this server."),
    "rivta.address": _l("Give the logical address as an HSA-id, e.g. SE2321000065-1234."),
    "rivta.subject": _l("The person has no personnummer to ask for."),
    "source.credential_unknown": _l("The password setting it names is not configured."),
    "source.adapter_unknown": _l("The kind of source is unknown."),
    "source.internal": _l("An unexpected error occurred while fetching."),
    "source.poll_interval": _l("Fetch between every 5 minutes and once a day."),
    "source.exists": _l("There is already a source with that name."),
    "source.not_found": _l("There is no such source."),
    "source.not_personal": _l("Only your own calendars can be removed here."),
    "source.unit_personal": _l("Choose a care unit."),
    "sync.discarded": _l("The latest change from the source was discarded on review."),
    "review.decided": _l("This change has already been decided."),
    "review.not_found": _l("There is no such change to review."),
    "consent.level": _l("Choose what the unit may see."),
    "provider.not_found": _l("There is no such unit."),
    "relationship.not_found": _l("There is no such care relationship."),
    "helper.basis": _l("Choose what the helper is to you."),
    "helper.decision": _l("Write the court decision's reference."),
    "helper.name": _l("Write the helper's name."),
    "helper.contact": _l("Write the helper's mobile number or e-mail address."),
    "helper.no_rights": _l("Choose at least one thing the helper may do."),
    "helper.until": _l("The end date must be today or later, written as YYYY-MM-DD."),
    "helper.not_found": _l("There is no such helper."),
    "helper.court": _l("A court appointment ends by a new court decision."),
    "invitation.invalid": _l("The code is not valid. Ask for a new invitation."),
    "invitation.role": _l("Log in with a helper account to accept."),
    "invitation.username": _l("Choose another user name."),
    "password.too_short": _l("The password must have at least 10 characters."),
    "password.weak": _l(
        "The password is too easy to guess. Use a few words that belong together only for you."
    ),
    "protection.reference_missing": _l("Write the reference of the decision."),
    "person.not_found": _l("No person with that personnummer is registered."),
    "personnummer.format": _l("Write the personnummer as YYYYMMDD-XXXX."),
    "personnummer.checksum": _l("The personnummer is not valid (check digit)."),
    "personnummer.date": _l("The personnummer holds no valid date."),
    "range.date_format": _l("Write dates as YYYY-MM-DD."),
    "date.out_of_range": _l("Choose a date in the years 1900 to 2200."),
    "preferences.number": _l("Write whole numbers."),
    "opening.format": _l("Give opening hours as weekdays with a start and an end."),
    "preferences.format": _l("The preferences could not be read."),
    "preferences.max": _l("The daily maximum is 1 to 20 visits."),
    "preferences.travel": _l("The travel time is 0 to 240 minutes."),
    "preferences.window": _l("A period must end after it starts (times as HH:MM)."),
    "preferences.weekdays": _l("Choose at least one weekday."),
    "preferences.kind": _l("Choose what kind of period it is."),
    "preferences.not_found": _l("There is no such period."),
    "clash": _l("The time clashes. Give a reason to book anyway, or choose another time."),
    "time.nonexistent": _l(
        "That time does not exist that day (the clocks go forward). Did you mean an hour later?"
    ),
    "time.ambiguous": _l(
        "That time happens twice that day (the clocks go back). Choose another time."
    ),
    "visit.duration": _l("A visit lasts from 5 to 600 minutes."),
    "visit.format": _l("Give date, start time and length."),
    "visit.date": _l("Book from today up to about 400 days ahead."),
    "visit.mode": _l("Choose in person, phone or video."),
}


_ACTIONS = {
    "calendar.read": _l("Looked at your calendar"),
    "booking.read": _l("Opened one of your visits"),
    "settings.read": _l("Looked at your settings"),
    "calendar.busy_lookup": _l("Saw when you are busy, to book a first visit"),
    "sources.read": _l("Looked at where your calendar's bookings come from"),
    "source.review": _l("Looked at a change from a source that waits for review"),
    "feed.fetch": _l("Your calendar was fetched through a subscription (calendar feed)"),
    "feed.create": _l("Made a calendar feed of your calendar"),
    "feed.list": _l("Looked at your calendar feeds"),
    "unit.day_list": _l("Saw your visits with the unit in its list of the day"),
    "person.protected_identity_on": _l(
        "Recorded that your personal data is protected (skyddade personuppgifter)"
    ),
    "person.protected_identity_off": _l("Recorded that the protection of your personal data ended"),
}


_CLASHES = {
    "overlap": _l("Clashes with %(other)s"),
    "busy_period": _l("The person is busy: %(other)s"),
    "travel": _l("Too little travel time to or from %(other)s"),
    "max_per_day": _l("More visits that day than the person manages (%(other)s)"),
    "outside_suitable": _l("Outside the times that suit the person"),
    "holiday": _l("Public holiday: %(other)s"),
}


def clash_text(warning: Any) -> str:
    """A clash warning in words, naming what it clashes with."""
    template = _CLASHES.get(warning.kind)
    return str(template) % {"other": warning.other} if template is not None else warning.kind


_REASONS = {
    "same_day_same_place": _l(
        "Same day and same address as your visit to %(other)s at %(time)s – one journey less"
    ),
    "same_day_same_town": _l(
        "Same day as your visit to %(other)s at %(time)s, in the same town – one journey less"
    ),
    "same_day": _l("Same day as your visit to %(other)s at %(time)s – one journey less"),
    "suits": _l("A time that suits you"),
    "free_day": _l("A free time"),
}


def suggestion_text(reason: Any, zone: str) -> str:
    """Why a time is suggested, in plain words."""
    from zoneinfo import ZoneInfo

    other = reason.other
    if not other or other.startswith("Upptagen"):
        other = str(_l("another unit"))
    when = reason.other_start.astimezone(ZoneInfo(zone)) if reason.other_start else None
    clock = f"{when:%H.%M}" if when else ""
    return str(_REASONS.get(reason.kind, _REASONS["free_day"])) % {"other": other, "time": clock}


def audit_action(action: str) -> str:
    """What an audit row's action means, in words."""
    text = _ACTIONS.get(action)
    return str(text) if text is not None else action


def weekday_names() -> list[str]:
    """Monday to Sunday in the visitor's language."""
    from babel.dates import get_day_names
    from flask_babel import get_locale

    names = get_day_names("wide", locale=str(get_locale() or "sv"))
    return [str(names[i]) for i in range(7)]


def error_text(code: str, fallback: str) -> str:
    """The visitor-language text for ``code``, or ``fallback`` if the code is unknown."""
    message = _MESSAGES.get(code)
    return str(message) if message is not None else fallback


SOURCE_STATES = {
    "new": _l("Not fetched yet"),
    "ok": _l("Working"),
    "stale": _l("Could not be fetched"),
    "failing": _l("Has failed several times"),
    "held": _l("A change waits for review"),
}


def source_state_text(state: str) -> str:
    return str(SOURCE_STATES.get(state, state))


REMINDER_STATES = {
    "planned": _l("Planned"),
    "sending": _l("Being sent"),
    "sent": _l("Sent"),
    "delivered": _l("Delivered"),
    "failed": _l("Failed"),
    "withdrawn": _l("Withdrawn"),
}
REMINDER_REASONS = {
    "no_phone": _l("there is no mobile number to send to"),
    "quiet_hours": _l("it would have come after the visit began, because of the quiet hours"),
    "visit_changed": _l("the visit was cancelled or moved, or its unit's reminders are off"),
    "not_applicable": _l("the reminder rules or recipients changed"),
    "too_late": _l("the visit had already begun when it was to be sent"),
    "opted_out": _l("the number has replied STOPP; it gets reminders again after START"),
    "21211": _l("the mobile number is not valid"),
    "21610": _l("the number has stopped text messages from us (STOPP)"),
    "21614": _l("the number cannot receive text messages"),
}


def rule_text(spec: str) -> str:
    """A stored rule spec ("days_before 2 18:00") in words: "2 dagar före kl. 18.00"."""
    kind, *parts = spec.split()
    if kind == "cancelled":
        return gettext("Notice that the visit is cancelled")
    if kind == "hours_before":
        return ngettext("%(num)d hour before", "%(num)d hours before", int(parts[0]))
    days, clock = int(parts[0]), parts[1].replace(":", ".")
    if kind == "transport":
        return ngettext(
            "Book the journey %(num)d day before at %(clock)s",
            "Book the journey %(num)d days before at %(clock)s",
            days,
            clock=clock,
        )
    if days == 0:
        return gettext("The same day at %(clock)s", clock=clock)
    return ngettext(
        "%(num)d day before at %(clock)s", "%(num)d days before at %(clock)s", days, clock=clock
    )


def reminder_state_text(state: str, reason: str) -> str:
    """ "Återkallad: det finns inget mobilnummer att skicka till"."""
    text = str(REMINDER_STATES.get(state, state))
    if reason.startswith("retry:"):
        return f"{text}: " + gettext("a new try after a temporary error")
    if reason.startswith("with:"):
        return f"{text}: " + gettext("in the same message as another visit that day")
    why = REMINDER_REASONS.get(reason)
    if why:
        return f"{text}: {why}"
    return f"{text}: " + gettext("error %(code)s", code=reason) if reason else text


def reason_text(code: str) -> str:
    """Why a message failed, in words, or the gateway's code."""
    why = REMINDER_REASONS.get(code)
    return str(why) if why else gettext("error %(code)s", code=code)
