"""Administration: API tokens for provider systems and scripts, and the service's health."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from calendar_app import metrics
from calendar_app.domain.errors import DomainError
from calendar_app.models import Provider, Role
from calendar_app.services import protection, tokens
from calendar_app.services.directory import find_person
from calendar_app.web import db, now_utc
from calendar_app.web.auth import current_actor, login_required, require_role
from calendar_app.web.messages import error_text

bp = Blueprint("admin", __name__, url_prefix="/admin")

SCOPE_LABELS = {
    "calendar:read": _l("Read calendars of people in the unit's care, check and suggest times"),
    "visits:write": _l("Book, rebook and cancel the unit's visits"),
    "units:write": _l("Change the unit's opening hours"),
    "bookings:push": _l(
        "Send the unit's own bookings from its booking system (create, change, cancel)"
    ),
}


def _page(status: int = 200, new_secret: str | None = None) -> ResponseReturnValue:
    units = list(db().scalars(select(Provider).order_by(Provider.name)))
    rows = tokens.list_tokens(db())
    return (
        render_template(
            "admin/tokens.html",
            tokens=rows,
            units=units,
            scope_labels=SCOPE_LABELS,
            new_secret=new_secret,
        ),
        status,
    )


@bp.route("/api-tokens", methods=["GET", "POST"])
@login_required
def api_tokens() -> ResponseReturnValue:
    """List tokens; make one (its secret is shown on this answer only, never again)."""
    require_role(Role.ADMIN)
    if request.method == "GET":
        return _page()
    try:
        made = tokens.create_token(
            db(),
            name=request.form.get("name", ""),
            provider_id=request.form.get("provider_id", type=int) or 0,
            scopes=request.form.getlist("scope"),
            created_by=current_actor().label,
            now=now_utc(),
        )
    except DomainError as exc:
        db().rollback()
        flash(error_text(exc.code, exc.message), "error")
        return _page(400)
    # Rendered, not flashed: a flashed message would travel in the session cookie.
    return _page(201, new_secret=made.secret)


@bp.post("/api-tokens/<int:token_id>/revoke")
@login_required
def revoke_api_token(token_id: int) -> ResponseReturnValue:
    """Revoke a token: the next request with it is refused."""
    require_role(Role.ADMIN)
    try:
        row = tokens.revoke_token(db(), token_id, now=now_utc())
    except DomainError as exc:
        db().rollback()
        flash(error_text(exc.code, exc.message), "error")
        return redirect(url_for("admin.api_tokens"))
    flash(_("The key %(name)s is revoked.", name=row.name), "info")
    return redirect(url_for("admin.api_tokens"))


def duration_text(seconds: float | None) -> str:
    """'3 timmar' / '3 hours'; a dash when there is nothing to measure."""
    if seconds is None:
        return "–"
    return str(format_timedelta(timedelta(seconds=seconds), threshold=1.5))


@bp.get("/health")
@login_required
def health() -> ResponseReturnValue:
    """The service at a glance: database and schema, reminders, the due queue, sources
    failing or stale per unit, and the requests answered since start."""
    require_role(Role.ADMIN)
    now = now_utc()
    try:
        schema = metrics.schema_state(db().connection())
        figures = metrics.read_health(db(), now=now)
    except SQLAlchemyError:
        db().rollback()
        schema, figures = None, None
    requests = metrics.request_figures(current_app.extensions["metrics"].requests)
    troubled = [group for group in figures.sources if group.troubled] if figures else []
    return render_template(
        "admin/health.html",
        schema=schema,
        figures=figures,
        troubled=troubled,
        source_totals=_source_totals(figures.sources) if figures else {},
        requests=requests,
        duration_text=duration_text,
        window_hours=int(metrics.REMINDER_WINDOW.total_seconds() // 3600),
    )


def _source_totals(groups: list[metrics.SourceGroup]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for group in groups:
        for state, count in group.by_state.items():
            totals[state] = totals.get(state, 0) + count
    return totals


@bp.route("/protected-identity", methods=["GET", "POST"])
@login_required
def protected_identity() -> ResponseReturnValue:
    """Record that a person has protected personal data, or that it has ended, with the
    decision's reference (personnummer in the form body, never in the address)."""
    require_role(Role.ADMIN)
    if request.method == "GET":
        return render_template("admin/protected_identity.html", changed=None)
    form = request.form
    try:
        person = find_person(db(), form.get("personnummer", ""), today=now_utc().date())
        changed = protection.set_protected_identity(
            db(),
            current_actor(),
            person.id,
            protected=form.get("action", "on") != "off",
            reference=form.get("reference", ""),
            now=now_utc(),
        )
    except DomainError as exc:
        db().rollback()
        flash(error_text(exc.code, exc.message), "error")
        return render_template("admin/protected_identity.html", changed=None), 400
    return render_template("admin/protected_identity.html", changed=changed)
