"""The person's pages (also opened by helpers and caregivers): week, agenda, booking, import."""

from __future__ import annotations

from datetime import date, timedelta
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
from sqlalchemy import select

from calendar_app.domain.bookings import SkippedEvent
from calendar_app.domain.dates import client_day
from calendar_app.domain.errors import DomainError
from calendar_app.domain.recurrence import is_recurrence_key
from calendar_app.models import Person, Provider, ProviderKind, Role
from calendar_app.providers import ProviderError
from calendar_app.services import calendar as calendar_service
from calendar_app.services.access import AccessDenied, authorize, visible_people
from calendar_app.services.booking import consolidation_review
from calendar_app.services.imports import NothingUsable, import_ics_file
from calendar_app.web import db, now_utc
from calendar_app.web.auth import current_actor, login_required
from calendar_app.web.messages import error_text

bp = Blueprint("person", __name__)


def _today(zone: str) -> date:
    return now_utc().astimezone(ZoneInfo(zone)).date()


def _parse_day(text: str | None, default: date) -> date:
    if not text:
        return default
    try:
        return client_day(date.fromisoformat(text), "day")
    except (ValueError, DomainError):
        abort(400)


@bp.get("/")
@login_required
def home() -> ResponseReturnValue:
    """Send each role to where it starts."""
    user = g.user
    if user.role == Role.PERSON:
        return redirect(url_for("person.week", person_id=user.person_id))
    if user.role == Role.ADMIN:
        units = db().scalars(select(Provider).order_by(Provider.name)).all()
        return render_template("admin/home.html", units=units)
    people = visible_people(db(), current_actor(), now=now_utc())
    return render_template("caregiver/people.html", people=people)


def _read(person_id: int, first: date, end: date) -> calendar_service.CalendarView:
    try:
        return calendar_service.read_calendar(
            db(),
            current_actor(),
            person_id,
            first,
            end,
            now=now_utc(),
            max_days=current_app.config["MAX_QUERY_DAYS"],
        )
    except AccessDenied:
        abort(403)


def _zone_of(person_id: int) -> str:
    person = db().get(Person, person_id)
    if person is None:
        abort(403)  # the same answer as for someone else's calendar: no hint who exists
    return person.timezone


@bp.get("/people/<int:person_id>/week")
@login_required
def week(person_id: int) -> ResponseReturnValue:
    """Seven days from Monday, each visit in its day, overlaps marked."""
    zone = _zone_of(person_id)
    day = _parse_day(request.args.get("start"), _today(zone))
    monday = day - timedelta(days=day.weekday())
    view = _read(person_id, monday, monday + timedelta(days=7))
    days = [monday + timedelta(days=i) for i in range(7)]
    return render_template(
        "person/week.html",
        view=view,
        days=days,
        by_day=_by_day(view, days),
        previous=monday - timedelta(days=7),
        following=monday + timedelta(days=7),
        week_number=monday.isocalendar().week,
    )


@bp.get("/people/<int:person_id>/today")
@login_required
def today(person_id: int) -> ResponseReturnValue:
    """One day: what is on, with everything about each visit."""
    zone = _zone_of(person_id)
    day = _parse_day(request.args.get("day"), _today(zone))
    view = _read(person_id, day, day + timedelta(days=1))
    return render_template(
        "person/today.html",
        view=view,
        day=day,
        items=_by_day(view, [day])[day],
        is_today=day == _today(zone),
        previous=day - timedelta(days=1),
        following=day + timedelta(days=1),
    )


@bp.get("/people/<int:person_id>/month")
@login_required
def month(person_id: int) -> ResponseReturnValue:
    """A month, week by week (Monday first), each day with its visits."""
    zone = _zone_of(person_id)
    first = _parse_day(request.args.get("start"), _today(zone)).replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    monday = first - timedelta(days=first.weekday())
    end = following + timedelta(days=(7 - following.weekday()) % 7)
    view = _read(person_id, monday, end)
    days = [monday + timedelta(days=i) for i in range((end - monday).days)]
    return render_template(
        "person/month.html",
        view=view,
        first=first,
        weeks=[days[i : i + 7] for i in range(0, len(days), 7)],
        by_day=_by_day(view, days),
        previous=(first - timedelta(days=1)).replace(day=1),
        following=following,
        today=_today(zone),
    )


@bp.get("/people/<int:person_id>/agenda")
@login_required
def agenda(person_id: int) -> ResponseReturnValue:
    """The coming visits, day by day."""
    zone = _zone_of(person_id)
    first = _parse_day(request.args.get("from"), _today(zone))
    view = _read(person_id, first, first + timedelta(days=28))
    days = [first + timedelta(days=i) for i in range(28)]
    grouped = {d: items for d, items in _by_day(view, days).items() if items}
    return render_template(
        "person/agenda.html",
        view=view,
        by_day=grouped,
        first=first,
        following=first + timedelta(days=28),
    )


def _by_day(
    view: calendar_service.CalendarView, days: list[date]
) -> dict[date, list[calendar_service.Occurrence]]:
    zone = ZoneInfo(view.timezone)
    result: dict[date, list[calendar_service.Occurrence]] = {d: [] for d in days}
    for occ in view.occurrences:
        for day in days:
            start = calendar_service.local_midnight(day, zone)
            end = calendar_service.local_midnight(day + timedelta(days=1), zone)
            if occ.start < end and (occ.end > start or occ.start == occ.end >= start):
                result[day].append(occ)
    return result


@bp.get("/people/<int:person_id>/bookings/<int:booking_id>")
@login_required
def booking(person_id: int, booking_id: int) -> ResponseReturnValue:
    """One visit: what, when, where, who, and whom to contact to change it."""
    key = request.args.get("occ", "")
    if key and not is_recurrence_key(key):
        abort(400)
    try:
        detail = calendar_service.read_booking(
            db(), current_actor(), booking_id, key, now=now_utc()
        )
    except AccessDenied:
        abort(403)
    except DomainError:
        abort(404)
    if detail.person_id != person_id:
        abort(404)
    return render_template("person/booking.html", detail=detail, person_id=person_id)


@bp.route("/people/<int:person_id>/import", methods=["GET", "POST"])
@login_required
def import_file(person_id: int) -> ResponseReturnValue:
    """Upload an iCalendar file: caregivers into their unit, the person as a personal source."""
    actor = current_actor()
    try:
        authorize(db(), actor, person_id, "calendar.import", now=now_utc())
    except AccessDenied:
        abort(403)
    finally:
        db().rollback()
    own_unit = g.user.provider.name if g.user.role == Role.CAREGIVER else None
    if request.method == "GET":
        return render_template("person/import.html", person_id=person_id, own_unit=own_unit)
    upload = request.files.get("file")
    provider_name = own_unit or request.form.get("provider", "").strip()
    kind = None if own_unit else ProviderKind.PERSONAL
    if upload is None or not upload.filename:
        flash(_("Choose a file to import."), "error")
        return render_template("person/import.html", person_id=person_id, own_unit=own_unit), 400
    try:
        summary = import_ics_file(
            db(),
            person_id=person_id,
            provider_name=provider_name or _("My calendar"),
            provider_kind=kind,
            source_name=request.form.get("source", "") or "file",
            data=upload.read(),
            now=now_utc(),
            max_bytes=current_app.config["MAX_ICS_BYTES"],
        )
    except (ProviderError, DomainError) as exc:
        db().rollback()
        flash(error_text(exc.code, exc.message), "error")
        _flash_skipped(exc.skipped if isinstance(exc, NothingUsable) else ())
        return render_template("person/import.html", person_id=person_id, own_unit=own_unit), 400
    flash(
        _(
            "Imported: %(added)d added, %(updated)d updated, %(cancelled)d cancelled, "
            "%(unchanged)d unchanged, %(skipped)d skipped.",
            added=summary.added,
            updated=summary.updated,
            cancelled=summary.cancelled,
            unchanged=summary.unchanged,
            skipped=len(summary.skipped),
        ),
        "info",
    )
    _flash_skipped(summary.skipped)
    return redirect(url_for("person.week", person_id=person_id))


def _flash_skipped(skipped: tuple[SkippedEvent, ...]) -> None:
    for event in skipped[:20]:
        flash(
            _(
                "Skipped event %(uid)s: %(reason)s",
                uid=event.uid or "?",
                reason=error_text(event.code, event.reason),
            ),
            "warning",
        )


@bp.get("/people/<int:person_id>/review")
@login_required
def review(person_id: int) -> ResponseReturnValue:
    """Which days in the coming four weeks could be merged, and how."""
    zone = _zone_of(person_id)
    try:
        weeks = consolidation_review(db(), current_actor(), person_id, now=now_utc())
    except (AccessDenied, DomainError):
        abort(403)
    return render_template("person/review.html", weeks=weeks, zone=zone, person_id=person_id)
