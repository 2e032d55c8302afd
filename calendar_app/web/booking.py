"""A caregiver books a visit: the page shows what the time clashes with before saving."""

from __future__ import annotations

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

from calendar_app.domain.errors import DomainError
from calendar_app.models import Person, Role
from calendar_app.services import replies
from calendar_app.services import unit_day as unit_day_service
from calendar_app.services.access import AccessDenied
from calendar_app.services.booking import VisitDraft, book_visit, check_visit, suggest_times
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
    except (TypeError, ValueError):
        raise DomainError(
            "visit.format", "give date (YYYY-MM-DD), start (HH:MM) and minutes"
        ) from None
    return VisitDraft(
        day=day,
        start=start,
        minutes=minutes,
        title=str(values.get("title", ""))[:500],
        location=str(values.get("location", ""))[:500],
        mode=str(values.get("mode", "in_person")),
    )


@bp.route("/people/<int:person_id>/book", methods=["GET", "POST"])
@login_required
def book(person_id: int) -> ResponseReturnValue:
    """Check a proposed time ("Kontrollera") and save it ("Boka")."""
    if g.user.role != Role.CAREGIVER:
        abort(403)
    form = request.form
    if request.method == "GET":
        return render_template("caregiver/book.html", person_id=person_id, form={}, result=None)
    try:
        draft = draft_from(form, start_needed=form.get("action") != "suggest")
        if form.get("action") == "book":
            book_visit(
                db(),
                current_actor(),
                person_id,
                draft,
                now=now_utc(),
                override_reason=form.get("override_reason"),
            )
            flash(_("The visit is booked."), "info")
            return redirect(
                url_for("person.week", person_id=person_id, start=draft.day.isoformat())
            )
        if form.get("action") == "suggest":
            suggestions = suggest_times(
                db(),
                current_actor(),
                person_id,
                minutes=draft.minutes,
                first_day=draft.day,
                last_day=draft.day + timedelta(days=int(form.get("days", "14") or 14) - 1),
                location=draft.location,
                now=now_utc(),
            )
            person = db().get(Person, person_id)
            return render_template(
                "caregiver/book.html",
                person_id=person_id,
                form=form,
                result=None,
                suggestions=suggestions,
                zone=person.timezone if person else "Europe/Stockholm",
            )
        result = check_visit(db(), current_actor(), person_id, draft, now=now_utc())
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
        return render_template(
            "caregiver/book.html", person_id=person_id, form=form, result=None
        ), 400
    if _live():
        # The page's script checks as the caregiver types: only the warnings are sent.
        return render_template("caregiver/_check_result.html", result=result)
    return render_template("caregiver/book.html", person_id=person_id, form=form, result=result)


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
        day = date.fromisoformat(request.args.get("day", "") or today.isoformat())
    except ValueError:
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
