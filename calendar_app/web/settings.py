"""The person's settings: consent per unit, care relationships, helpers, and the audit log
("Vem har sett min kalender?"); the helper's invitation; the administrator's pages."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
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
from calendar_app.models import Person, Role
from calendar_app.services import feeds, preferences
from calendar_app.services import settings as settings_service
from calendar_app.services.access import AccessDenied
from calendar_app.services.audit import export_audit_csv, log_lines, read_audit_log
from calendar_app.services.directory import find_person
from calendar_app.web import db, now_utc
from calendar_app.web.auth import current_actor, login_required, require_role
from calendar_app.web.messages import error_text, weekday_names

bp = Blueprint("settings", __name__)


def refused(
    exc: DomainError, person_id: int, page_endpoint: str = "settings.page"
) -> ResponseReturnValue:
    """Undo the request's writes and go back to the person's page with the reason, or
    answer 403 for a refused access (and 404 for a feed that is not there)."""
    db().rollback()
    if isinstance(exc, AccessDenied):
        abort(403)
    if exc.code == "feed.not_found":
        abort(404)
    flash(error_text(exc.code, exc.message), "error")
    return redirect(url_for(page_endpoint, person_id=person_id))


@bp.get("/people/<int:person_id>/settings")
@login_required
def page(person_id: int) -> ResponseReturnValue:
    """Who may see what: units, care relationships and helpers."""
    return _settings_page(person_id)


def _settings_page(
    person_id: int, *, new_code: str | None = None, status: int = 200
) -> ResponseReturnValue:
    try:
        view = settings_service.read_settings(db(), current_actor(), person_id, now=now_utc())
        # Every feed is listed here too: who can read the calendar from outside.
        items = feeds.list_feeds(db(), current_actor(), person_id, now=now_utc(), audited=False)
    except AccessDenied:
        abort(403)
    return (
        render_template(
            "person/settings.html",
            view=view,
            new_code=new_code,
            feeds=items,
            zone=_zone(person_id),
        ),
        status,
    )


@bp.post("/people/<int:person_id>/settings/units/<int:provider_id>")
@login_required
def unit_consent(person_id: int, provider_id: int) -> ResponseReturnValue:
    """Save the consent for one unit."""
    try:
        settings_service.set_unit_consent(
            db(),
            current_actor(),
            person_id,
            provider_id,
            others_level=request.form.get("others_level", "busy"),
            sensitive=request.form.get("sensitive") == "on",
            now=now_utc(),
        )
    except DomainError as exc:
        return refused(exc, person_id)
    flash(_("Your choice is saved."), "info")
    return redirect(url_for("settings.page", person_id=person_id))


@bp.post("/people/<int:person_id>/settings/relationships")
@login_required
def add_relationship(person_id: int) -> ResponseReturnValue:
    """Let a unit see the calendar (a care relationship)."""
    try:
        settings_service.start_care_relationship(
            db(),
            current_actor(),
            person_id,
            int(request.form.get("provider_id", "0") or 0),
            now=now_utc(),
        )
    except DomainError as exc:
        return refused(exc, person_id)
    flash(_("The unit may now see your calendar."), "info")
    return redirect(url_for("settings.page", person_id=person_id))


@bp.post("/people/<int:person_id>/settings/relationships/<int:relationship_id>/end")
@login_required
def end_relationship(person_id: int, relationship_id: int) -> ResponseReturnValue:
    """End a care relationship."""
    try:
        settings_service.end_care_relationship(
            db(), current_actor(), person_id, relationship_id, now=now_utc()
        )
    except DomainError as exc:
        return refused(exc, person_id)
    flash(_("The unit can no longer see your calendar."), "info")
    return redirect(url_for("settings.page", person_id=person_id))


def _zone(person_id: int) -> str:
    person = db().get(Person, person_id)
    return person.timezone if person else current_app.config["DEFAULT_TIMEZONE"]


def _until(text: str | None) -> date | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise DomainError("helper.until", "write the date as YYYY-MM-DD") from None
    return client_day(day, "until")


@bp.post("/people/<int:person_id>/settings/helpers")
@login_required
def invite(person_id: int) -> ResponseReturnValue:
    """Invite a helper; the code is shown once, to be given to the helper."""
    if g.user.role == Role.ADMIN:
        abort(403)  # administrators register court appointments on their own page
    form = request.form
    try:
        invitation = settings_service.invite_helper(
            db(),
            current_actor(),
            person_id,
            name=form.get("name", ""),
            contact=form.get("contact", ""),
            view_level=form.get("view_level") or None,
            receives_reminders=form.get("reminders") == "on",
            manages_settings=form.get("manage") == "on",
            valid_until=_until(form.get("until")),
            basis=form.get("basis", ""),
            now=now_utc(),
        )
    except DomainError as exc:
        return refused(exc, person_id)
    # Rendered, not flashed: a flashed message would travel in the session cookie.
    return _settings_page(person_id, new_code=invitation.code, status=201)


@bp.post("/people/<int:person_id>/settings/helpers/<int:grant_id>/withdraw")
@login_required
def withdraw(person_id: int, grant_id: int) -> ResponseReturnValue:
    """Withdraw a helper's rights, at once."""
    try:
        settings_service.withdraw_helper(db(), current_actor(), person_id, grant_id, now=now_utc())
    except DomainError as exc:
        return refused(exc, person_id)
    flash(_("The helper's rights are withdrawn."), "info")
    return redirect(url_for("settings.page", person_id=person_id))


@bp.get("/people/<int:person_id>/audit")
@login_required
def audit(person_id: int) -> ResponseReturnValue:
    """Vem har sett min kalender? The last 90 days, newest first."""
    person = db().get(Person, person_id)
    if person is None:
        abort(403)
    today = now_utc().astimezone(ZoneInfo(person.timezone)).date()
    try:
        rows = read_audit_log(
            db(),
            current_actor(),
            person_id,
            today - timedelta(days=90),
            today + timedelta(days=1),
            now=now_utc(),
            max_days=current_app.config["MAX_QUERY_DAYS"],
        )
    except AccessDenied:
        abort(403)
    lines = log_lines(rows, person.timezone)
    return render_template("person/audit.html", lines=lines, person=person)


@bp.route("/invitation", methods=["GET", "POST"])
def invitation() -> ResponseReturnValue:
    """A helper accepts an invitation: with a new account, or the one signed in."""
    if request.method == "GET":
        return render_template("auth/invitation.html")
    signed_in = g.user if g.user is not None and g.user.role == Role.HELPER else None
    try:
        settings_service.accept_invitation(
            db(),
            code=request.form.get("code", ""),
            username=request.form.get("username", ""),
            display_name=request.form.get("display_name", ""),
            password=request.form.get("password", ""),
            now=now_utc(),
            existing_user=signed_in,
        )
    except DomainError as exc:
        db().rollback()
        flash(error_text(exc.code, exc.message), "error")
        return render_template("auth/invitation.html"), 400
    flash(_("The invitation is accepted."), "info")
    return redirect(url_for("person.home") if signed_in else url_for("auth.login"))


def _admin_person(form_key: str = "personnummer") -> Person:
    return find_person(db(), request.form.get(form_key, ""), today=now_utc().date())


@bp.route("/admin/court-helpers", methods=["GET", "POST"])
@login_required
def court_helper() -> ResponseReturnValue:
    """Register a god man or förvaltare with the court decision's reference."""
    require_role(Role.ADMIN)
    if request.method == "GET":
        return render_template("admin/court_helper.html")
    form = request.form
    try:
        person = _admin_person()
        invitation = settings_service.invite_helper(
            db(),
            current_actor(),
            person.id,
            name=form.get("name", ""),
            contact=form.get("contact", ""),
            view_level=form.get("view_level") or None,
            receives_reminders=form.get("reminders") == "on",
            manages_settings=form.get("manage") == "on",
            valid_until=_until(form.get("until")),
            basis=form.get("basis", ""),
            decision_reference=form.get("reference", ""),
            now=now_utc(),
        )
    except DomainError as exc:
        db().rollback()
        flash(error_text(exc.code, exc.message), "error")
        return render_template("admin/court_helper.html"), 400
    # Rendered, not flashed: a flashed message would travel in the session cookie.
    return render_template("admin/court_helper.html", new_code=invitation.code), 201


@bp.route("/admin/audit-export", methods=["GET", "POST"])
@login_required
def audit_export() -> ResponseReturnValue:
    """Export one person's audit log for a period as CSV (personnummer in the form body)."""
    require_role(Role.ADMIN)
    if request.method == "GET":
        return render_template("admin/audit_export.html")
    try:
        person = _admin_person()
        first = client_day(date.fromisoformat(request.form.get("from", "")), "from")
        end = client_day(date.fromisoformat(request.form.get("to", "")), "to")
    except ValueError:
        flash(error_text("range.date_format", "write dates as YYYY-MM-DD"), "error")
        return render_template("admin/audit_export.html"), 400
    except DomainError as exc:
        flash(error_text(exc.code, exc.message), "error")
        return render_template("admin/audit_export.html"), 400
    try:
        text = export_audit_csv(
            db(),
            current_actor(),
            person.id,
            first,
            end,
            max_days=current_app.config["MAX_QUERY_DAYS"],
        )
    except DomainError as exc:
        flash(error_text(exc.code, exc.message), "error")
        return render_template("admin/audit_export.html"), 400
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{person.id}.csv"'},
    )


def _window_from(values: Any) -> preferences.WindowInput:
    try:
        weekdays = tuple(int(d) for d in values.getlist("weekday"))
        start = time.fromisoformat(values.get("start", ""))
        end = time.fromisoformat(values.get("end", ""))
    except ValueError:
        raise DomainError("preferences.window", "give the times as HH:MM") from None
    return preferences.WindowInput(
        kind=values.get("kind", ""),
        weekdays=weekdays,
        start=start,
        end=end,
        label=values.get("label", ""),
    )


@bp.route("/people/<int:person_id>/preferences", methods=["GET", "POST"])
@login_required
def preferences_page(person_id: int) -> ResponseReturnValue:
    """Times that suit, busy periods (work, school), daily maximum, travel, home address."""
    if request.method == "POST":
        form = request.form
        try:
            maximum = form.get("max_visits", "").strip()
            preferences.save_preferences(
                db(),
                current_actor(),
                person_id,
                max_visits_per_day=int(maximum) if maximum else None,
                travel_buffer_minutes=int(form.get("travel", "60") or 60),
                home_address=form.get("home_address", ""),
                windows=None,
                now=now_utc(),
            )
        except ValueError:
            flash(error_text("preferences.number", "write whole numbers"), "error")
        except DomainError as exc:
            return refused(exc, person_id, "settings.preferences_page")
        else:
            flash(_("Your choice is saved."), "info")
        return redirect(url_for("settings.preferences_page", person_id=person_id))
    try:
        view = preferences.read_preferences(db(), current_actor(), person_id, now=now_utc())
    except AccessDenied:
        abort(403)
    return render_template(
        "person/preferences.html", view=view, person_id=person_id, weekday_names=weekday_names()
    )


@bp.post("/people/<int:person_id>/preferences/windows")
@login_required
def add_window(person_id: int) -> ResponseReturnValue:
    """Add a time that suits, or a busy period."""
    try:
        preferences.add_window(
            db(), current_actor(), person_id, _window_from(request.form), now=now_utc()
        )
    except DomainError as exc:
        return refused(exc, person_id, "settings.preferences_page")
    flash(_("Your choice is saved."), "info")
    return redirect(url_for("settings.preferences_page", person_id=person_id))


@bp.post("/people/<int:person_id>/preferences/windows/<int:window_id>/delete")
@login_required
def remove_window(person_id: int, window_id: int) -> ResponseReturnValue:
    """Remove a window."""
    try:
        preferences.remove_window(db(), current_actor(), person_id, window_id, now=now_utc())
    except DomainError as exc:
        return refused(exc, person_id, "settings.preferences_page")
    return redirect(url_for("settings.preferences_page", person_id=person_id))
