"""Påminnelser: the person's reminder rules, recipients, quiet hours, and every reminder's
state (planned, sent, delivered, failed, withdrawn)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from calendar_app.domain.errors import DomainError
from calendar_app.services import reminders
from calendar_app.services.access import AccessDenied, may
from calendar_app.sms import SmsError
from calendar_app.web import db, now_utc
from calendar_app.web.auth import current_actor, login_required
from calendar_app.web.messages import reason_text
from calendar_app.web.settings import refused

TEST_TEXT = "Test från Personkalendern: så här ser dina påminnelser ut när de kommer."

bp = Blueprint("reminders", __name__)


def _back(person_id: int) -> ResponseReturnValue:
    return redirect(url_for("reminders.page", person_id=person_id))


def _save(person_id: int, change: Callable[[], object]) -> ResponseReturnValue:
    """Run one change of the person's choices and go back to the page saying how it went."""
    try:
        change()
    except DomainError as exc:
        return refused(exc, person_id, "reminders.page")
    flash(_("Your choice is saved."), "info")
    return _back(person_id)


def clock_field(text: str | None) -> time | None:
    """'18:00' or '18.00' as a time; empty is None; anything else is ``reminder.time``."""
    text = (text or "").strip().replace(".", ":")
    if not text:
        return None
    hour, _, minute = text.partition(":")
    digits = _digits(hour) and len(hour) <= 2 and (minute == "" or _digits(minute))
    if digits and len(minute) in (0, 2) and int(hour) < 24 and int(minute or 0) < 60:
        return time(int(hour), int(minute or 0))
    raise DomainError("reminder.time", "write the time as HH.MM, e.g. 18.00")


def _digits(text: str) -> bool:
    # str.isdigit() also holds for "²" and other digits int() does not read.
    return text.isascii() and text.isdigit()


def number_field(text: str | None) -> int | None:
    """A whole number from a form field; empty is None; anything else is ``reminder.rule``."""
    text = (text or "").strip()
    if not text:
        return None
    if not _digits(text) or len(text) > 3:
        raise DomainError("reminder.rule", "write a whole number")
    return int(text)


@bp.get("/people/<int:person_id>/reminders")
@login_required
def page(person_id: int) -> ResponseReturnValue:
    """Rules, recipients, quiet hours, units, and the list of reminders with their state."""
    try:
        view = reminders.read_reminders(db(), current_actor(), person_id, now=now_utc())
    except AccessDenied:
        abort(403)
    return render_template("person/reminders.html", view=view)


@bp.post("/people/<int:person_id>/reminders/rules")
@login_required
def add_rule(person_id: int) -> ResponseReturnValue:
    """Add "N dagar före kl. HH.MM", "samma dag kl. HH.MM", "N timmar före" or "boka resa"."""
    form = request.form

    def change() -> None:
        same_day = form.get("kind") == "same_day"
        reminders.add_rule(
            db(),
            current_actor(),
            person_id,
            kind="days_before" if same_day else form.get("kind", ""),
            days=0 if same_day else number_field(form.get("days")),
            at=clock_field(form.get("at")),
            hours=number_field(form.get("hours")),
            now=now_utc(),
        )

    return _save(person_id, change)


@bp.post("/people/<int:person_id>/reminders/rules/<int:rule_id>/delete")
@login_required
def remove_rule(person_id: int, rule_id: int) -> ResponseReturnValue:
    """Remove a rule; its planned reminders are withdrawn."""
    return _save(
        person_id,
        lambda: reminders.remove_rule(db(), current_actor(), person_id, rule_id, now=now_utc()),
    )


@bp.post("/people/<int:person_id>/reminders/settings")
@login_required
def settings(person_id: int) -> ResponseReturnValue:
    """Reminders to the person themselves, and the quiet hours."""
    form = request.form
    return _save(
        person_id,
        lambda: reminders.set_reminder_settings(
            db(),
            current_actor(),
            person_id,
            to_person=form.get("to_person") == "on",
            cancellation_notice=form.get("cancellation_notice") == "on",
            quiet_start=clock_field(form.get("quiet_start")),
            quiet_end=clock_field(form.get("quiet_end")),
            now=now_utc(),
        ),
    )


@bp.post("/people/<int:person_id>/reminders/units/<int:provider_id>")
@login_required
def unit(person_id: int, provider_id: int) -> ResponseReturnValue:
    """Reminders for one unit's visits on or off."""
    return _save(
        person_id,
        lambda: reminders.set_unit_reminders(
            db(),
            current_actor(),
            person_id,
            provider_id,
            on=request.form.get("on") == "1",
            named=request.form.get("named") == "1",
            now=now_utc(),
        ),
    )


@bp.post("/people/<int:person_id>/reminders/test")
@login_required
def send_test(person_id: int) -> ResponseReturnValue:
    """Send a test message to the person's own number through the configured sender."""
    try:
        to = reminders.test_recipient(db(), current_actor(), person_id, now=now_utc())
        current_app.extensions["sms_sender"].send(to, TEST_TEXT)
    except DomainError as exc:
        return refused(exc, person_id, "reminders.page")
    except SmsError as exc:
        flash(_("The test message was not sent: %(reason)s", reason=reason_text(exc.code)), "error")
        return _back(person_id)
    flash(_("A test message is on its way to your mobile number."), "info")
    return _back(person_id)


@bp.get("/b/<int:booking_id>")
@login_required
def short_link(booking_id: int) -> ResponseReturnValue:
    """The short link in a reminder: on to the booking's page, for whoever may see it. To
    anyone else it is not found, as a booking that does not exist: the link must not tell
    whose booking it is."""
    try:
        person_id = reminders.booking_person(db(), booking_id)
    except DomainError:
        abort(404)
    if not may(db(), current_actor(), person_id, "booking.read", now=now_utc()):
        db().rollback()
        abort(404)
    db().rollback()
    return redirect(url_for("person.booking", person_id=person_id, booking_id=booking_id))
