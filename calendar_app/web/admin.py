"""Administration of API tokens for provider systems and scripts."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from calendar_app.db import now_utc
from calendar_app.domain.errors import DomainError
from calendar_app.models import Provider, Role
from calendar_app.services import tokens
from calendar_app.web import db
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
