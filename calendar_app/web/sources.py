"""Synced sources: the person's own calendars, every source's health, held reads, and the
administrators' list of all sources."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from calendar_app.domain.errors import DomainError
from calendar_app.models import Person, Provider, ProviderKind, Role, Source, SourceReview
from calendar_app.providers import ProviderError
from calendar_app.services import sources as source_service
from calendar_app.services import sync
from calendar_app.services.access import AccessDenied, audit, authorize
from calendar_app.services.directory import find_person
from calendar_app.web import db, now_utc
from calendar_app.web.auth import current_actor, login_required, require_role
from calendar_app.web.messages import error_text

bp = Blueprint("sources", __name__)


def _policy() -> sync.SyncPolicy:
    return sync.SyncPolicy.from_config(current_app.config)


def _refused(exc: Exception, person_id: int) -> ResponseReturnValue:
    db().rollback()
    if isinstance(exc, AccessDenied):
        abort(403)
    assert isinstance(exc, DomainError | ProviderError)
    flash(error_text(exc.code, exc.message), "error")
    return redirect(url_for("sources.page", person_id=person_id))


def _person_or_403(person_id: int) -> Person:
    person = db().get(Person, person_id)
    if person is None or person.deleted_utc is not None:
        abort(403)
    return person


def _check_reader(person_id: int) -> None:
    """The person, a helper managing their settings, or an administrator."""
    actor = current_actor()
    if actor.role == Role.ADMIN:
        audit(db(), actor, person_id, "sources.read", now=now_utc())
        return
    try:
        authorize(db(), actor, person_id, "settings.read", now=now_utc())
    except AccessDenied:
        abort(403)


@bp.get("/people/<int:person_id>/sources")
@login_required
def page(person_id: int) -> ResponseReturnValue:
    """Where the calendar's bookings come from, how each source is doing, and the person's
    own calendars (work, school, a phone's published calendar)."""
    person = _person_or_403(person_id)
    _check_reader(person_id)
    rows = source_service.list_sources(db(), person_id)
    if current_actor().person_id != person_id and current_actor().role != Role.ADMIN:
        rows = [r for r in rows if r.personal]  # a helper manages only the own calendars
    db().commit()
    return render_template("person/sources.html", person=person, rows=rows)


@bp.post("/people/<int:person_id>/sources")
@login_required
def add(person_id: int) -> ResponseReturnValue:
    """Add one of the person's own calendars by its published address."""
    _person_or_403(person_id)
    try:
        source_service.add_source(
            db(),
            current_actor(),
            person_id=person_id,
            adapter="ics_url",
            fields={"url": request.form.get("url", "")},
            unit_name=None,
            name=request.form.get("name", ""),
            policy=_policy(),
            now=now_utc(),
        )
    except (DomainError, ProviderError) as exc:
        return _refused(exc, person_id)
    flash(_("The calendar is added. Its events count as busy time; nobody else sees them."), "info")
    return redirect(url_for("sources.page", person_id=person_id))


def _source_of(person_id: int, source_id: int) -> Source:
    source = db().get(Source, source_id)
    if source is None or source.person_id != person_id:
        abort(404)
    return source


@bp.post("/people/<int:person_id>/sources/<int:source_id>/remove")
@login_required
def remove(person_id: int, source_id: int) -> ResponseReturnValue:
    """Remove one of the person's own calendars and its events."""
    _source_of(person_id, source_id)
    try:
        source_service.remove_source(db(), current_actor(), source_id, now=now_utc())
    except (DomainError, ProviderError) as exc:
        return _refused(exc, person_id)
    flash(_("The calendar is removed."), "info")
    return redirect(url_for("sources.page", person_id=person_id))


@bp.post("/people/<int:person_id>/sources/<int:source_id>/sync")
@login_required
def sync_now(person_id: int, source_id: int) -> ResponseReturnValue:
    """Read the source now instead of waiting for its turn."""
    _source_of(person_id, source_id)
    _check_reader(person_id)
    db().commit()
    outcomes = sync.sync_due(
        current_app.extensions["session_factory"],
        _policy(),
        worker=f"web:{sync.worker_name()}",
        clock=now_utc,
        source_id=source_id,
    )
    if not outcomes:
        flash(_("The source is being read right now; try again in a minute."), "warning")
    elif outcomes[0].error_code:
        flash(error_text(outcomes[0].error_code, outcomes[0].error_message), "error")
    elif outcomes[0].review_id is not None:
        flash(_("The change is held for review: it would cancel many bookings."), "warning")
    else:
        flash(_("The source was read."), "info")
    return redirect(url_for("sources.page", person_id=person_id))


@bp.route("/people/<int:person_id>/reviews/<int:review_id>", methods=["GET", "POST"])
@login_required
def review(person_id: int, review_id: int) -> ResponseReturnValue:
    """A read held because it would cancel many bookings: apply it or discard it."""
    actor = current_actor()
    held = db().get(SourceReview, review_id)
    if held is None or held.person_id != person_id:
        abort(404)
    db().commit()
    try:
        if request.method == "POST":
            action = request.form.get("action")
            if action not in ("apply", "discard"):
                abort(400)
            source_service.decide_review(
                db(), actor, review_id, apply=action == "apply", now=now_utc()
            )
            flash(
                _("The change is applied.") if action == "apply" else _("The change is discarded."),
                "info",
            )
            if actor.role == Role.ADMIN:
                return redirect(url_for("sources.admin_list"))
            return redirect(url_for("sources.page", person_id=person_id))
        view = source_service.read_review(db(), actor, review_id, now=now_utc())
    except (DomainError, ProviderError) as exc:
        return _refused(exc, person_id)
    person = _person_or_403(person_id)
    return render_template("person/source_review.html", view=view, person=person)


@bp.route("/admin/sources", methods=["GET", "POST"])
@login_required
def admin_list() -> ResponseReturnValue:
    """Every synced source with its health and held reads; add a unit's source for a person
    (the personnummer travels in the form, never in a URL)."""
    require_role(Role.ADMIN)
    status = 200
    if request.method == "POST":
        try:
            person = find_person(db(), request.form.get("personnummer", ""), today=now_utc().date())
            source_service.add_source(
                db(),
                current_actor(),
                person_id=person.id,
                adapter=request.form.get("adapter", "ics_url"),
                fields={
                    "url": request.form.get("url", ""),
                    "username": request.form.get("username", ""),
                    "password": request.form.get("password", ""),
                    "token": request.form.get("token", ""),
                    "logical_address": request.form.get("logical_address", ""),
                },
                unit_name=request.form.get("unit", ""),
                unit_kind=None,
                name=request.form.get("name", ""),
                poll_minutes=request.form.get("poll_minutes", type=int),
                policy=_policy(),
                now=now_utc(),
            )
            flash(_("The source is added and will be read within a minute."), "info")
            return redirect(url_for("sources.admin_list"))
        except (DomainError, ProviderError) as exc:
            db().rollback()
            flash(error_text(exc.code, exc.message), "error")
            status = 400
    rows = source_service.list_sources(db())
    reviews = source_service.pending_reviews(db())
    units = list(
        db().scalars(
            select(Provider).where(Provider.kind != ProviderKind.PERSONAL).order_by(Provider.name)
        )
    )
    db().commit()
    return render_template("admin/sources.html", rows=rows, reviews=reviews, units=units), status


@bp.post("/admin/sources/<int:source_id>/<any(pause, resume):action>")
@login_required
def admin_pause(source_id: int, action: str) -> ResponseReturnValue:
    """Pause a source (its bookings stay as they are) or resume it (read at once)."""
    require_role(Role.ADMIN)
    try:
        source_service.set_enabled(db(), source_id, action == "resume", now=now_utc())
    except DomainError:
        abort(404)
    return redirect(url_for("sources.admin_list"))
