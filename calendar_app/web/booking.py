"""A caregiver books a visit: the page shows what the time clashes with before saving."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from calendar_app.domain.dates import client_day
from calendar_app.domain.errors import DomainError
from calendar_app.models import Role
from calendar_app.services import replies
from calendar_app.services import unit_day as unit_day_service
from calendar_app.services.access import AccessDenied
from calendar_app.services.booking import (
    Reach,
    VisitDraft,
    book_visit,
    check_visit,
    reach_by_id,
    reach_by_personnummer,
    suggest_times,
)
from calendar_app.web import db, now_utc
from calendar_app.web.auth import current_actor, login_required
from calendar_app.web.messages import error_text

bp = Blueprint("booking", __name__)


def draft_from(values: Any, *, start_needed: bool = True) -> VisitDraft:
    """A draft from form or JSON values; a malformed field is a clear error."""
    try:
        day = date.fromisoformat(str(values.get("date", "")))
        start = time.fromisoformat(
            str(values.get("start", "")) or ("" if start_needed else "12:00")
        )
        minutes = int(values.get("minutes", 0))
    except (TypeError, ValueError, OverflowError):
        raise DomainError(
            "visit.format", "give date (YYYY-MM-DD), start (HH:MM) and minutes"
        ) from None
    return VisitDraft(
        day=client_day(day, "date"),
        start=start,
        minutes=minutes,
        title=str(values.get("title", ""))[:500],
        location=str(values.get("location", ""))[:500],
        mode=str(values.get("mode", "in_person")),
    )


def days_to_search(form: Any) -> int:
    """How many days from the date the suggestions may cover (default 14)."""
    text = str(form.get("days", "") or "14").strip()
    if not text.isascii() or not text.isdigit():
        raise DomainError("visit.format", "give the number of days as a whole number")
    most = current_app.config["MAX_QUERY_DAYS"]
    if len(text) > 6 or not 1 <= int(text) <= most:
        raise DomainError("range.too_long", f"suggestions may cover 1 to {most} days")
    return int(text)


@bp.route("/people/<int:person_id>/book", methods=["GET", "POST"])
@login_required
def book(person_id: int) -> ResponseReturnValue:
    """Check a proposed time ("Kontrollera") and save it ("Boka"), for a person the
    caregiver's unit cares for."""
    if g.user.role != Role.CAREGIVER:
        abort(403)
    try:
        reach = reach_by_id(db(), current_actor(), person_id)
    except AccessDenied:
        abort(403)
    return _booking_form(lambda: reach, person_id=person_id)


@bp.route("/unit/first-visit", methods=["GET", "POST"])
@login_required
def first_visit() -> ResponseReturnValue:
    """A unit's first visit to a person it does not care for yet: found by personnummer
    (in the form, never in the address), checked against the person's busy time only;
    booking it starts the unit's care relationship."""
    if g.user.role != Role.CAREGIVER:
        abort(403)
    form = request.form
    return _booking_form(
        lambda: reach_by_personnummer(
            db(), current_actor(), form.get("personnummer", ""), now=now_utc()
        ),
        person_id=None,
    )


def _booking_form(reach_of: Callable[[], Reach], *, person_id: int | None) -> ResponseReturnValue:
    """The booking page's check, suggestions and booking, however the person was reached."""
    form = request.form
    page = {"person_id": person_id, "first_visit": person_id is None}
    if request.method == "GET":
        return render_template("caregiver/book.html", form={}, result=None, **page)
    try:
        reach = reach_of()
        draft = draft_from(form, start_needed=form.get("action") != "suggest")
        if form.get("action") == "book":
            booking = book_visit(
                db(),
                current_actor(),
                reach,
                draft,
                now=now_utc(),
                override_reason=form.get("override_reason"),
            )
            flash(_("The visit is booked."), "info")
            return redirect(
                url_for("person.week", person_id=booking.person_id, start=draft.day.isoformat())
            )
        if form.get("action") == "suggest":
            suggestions = suggest_times(
                db(),
                current_actor(),
                reach,
                minutes=draft.minutes,
                first_day=draft.day,
                last_day=draft.day + timedelta(days=days_to_search(form) - 1),
                location=draft.location,
                now=now_utc(),
            )
            return render_template(
                "caregiver/book.html",
                form=form,
                result=None,
                suggestions=suggestions,
                zone=reach.person.timezone,
                **page,
            )
        result = check_visit(db(), current_actor(), reach, draft, now=now_utc())
    except AccessDenied:
        abort(403)
    except DomainError as exc:
        db().rollback()
        if exc.code == "access.denied":
            abort(403)
        if _live():
            return render_template(
                "caregiver/_check_error.html", message=error_text(exc.code, exc.message)
            ), 400
        flash(error_text(exc.code, exc.message), "error")
        return render_template("caregiver/book.html", form=form, result=None, **page), 400
    if _live():
        # The page's script checks as the caregiver types: only the warnings are sent.
        return render_template("caregiver/_check_result.html", result=result)
    return render_template("caregiver/book.html", form=form, result=result, **page)


def _live() -> bool:
    """A check asked by the booking page's script (static/book.js), not by the form."""
    return (
        request.headers.get("X-Requested-With") == "fetch" and request.form.get("action") == "check"
    )


@bp.get("/unit/messages")
@login_required
def unit_messages() -> ResponseReturnValue:
    """Replies to reminders for the caregiver's unit: cancellation requests and messages."""
    if g.user.role != Role.CAREGIVER:
        abort(403)
    rows = replies.unit_messages(db(), current_actor(), now=now_utc())
    return render_template("caregiver/messages.html", rows=rows)


@bp.get("/unit/day")
@login_required
def unit_day() -> ResponseReturnValue:
    """The caregiver's unit's visits on one day, across the people it cares for."""
    if g.user.role != Role.CAREGIVER:
        abort(403)
    zone = ZoneInfo(current_app.config["DEFAULT_TIMEZONE"])
    today = now_utc().astimezone(zone).date()
    try:
        day = client_day(date.fromisoformat(request.args.get("day") or today.isoformat()), "day")
    except (ValueError, DomainError):
        abort(400)
    visits = unit_day_service.unit_day(db(), current_actor(), day, zone=zone, now=now_utc())
    return render_template(
        "caregiver/day.html",
        visits=visits,
        day=day,
        zone=zone.key,
        unit=g.user.provider.name if g.user.provider else "",
        previous=day - timedelta(days=1),
        following=day + timedelta(days=1),
    )
