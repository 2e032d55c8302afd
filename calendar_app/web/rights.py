"""The person's rights: a copy of everything stored about them, and deletion.

Only the person themselves, signed in; the person's id comes from the account, never
from the URL.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, g, render_template, request, session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from calendar_app.models import Role
from calendar_app.services import erasure, export
from calendar_app.web import db, now_utc
from calendar_app.web.auth import login_required

bp = Blueprint("rights", __name__, url_prefix="/account")

CONFIRM_WORD = "RADERA"


def _person_id() -> int:
    if g.user.role != Role.PERSON or g.user.person_id is None:
        abort(403)
    return int(g.user.person_id)


def _download(body: bytes, mimetype: str, filename: str) -> Response:
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/export.json")
@login_required
def export_json() -> ResponseReturnValue:
    """Everything stored about the person, as JSON."""
    data = export.export_person_data(db(), _person_id(), now=now_utc())
    body = json.dumps(data, ensure_ascii=False, indent=2).encode()
    return _download(body, "application/json", "personkalendern.json")


@bp.get("/export.ics")
@login_required
def export_ics() -> ResponseReturnValue:
    """Every visit, as an iCalendar file for another calendar."""
    body = export.export_person_ics(db(), _person_id(), now=now_utc())
    return _download(body, "text/calendar", "personkalendern.ics")


@bp.route("/delete", methods=["GET", "POST"])
@login_required
def delete() -> ResponseReturnValue:
    """Ask, state what is kept and why, then delete the account and the data."""
    person_id = _person_id()
    if request.method == "GET":
        return render_template("account/delete.html")
    if request.form.get("confirm", "").strip().upper() != CONFIRM_WORD:
        flash(_("Write RADERA to confirm. Nothing was deleted."), "error")
        return render_template("account/delete.html"), 400
    report = erasure.delete_person(db(), person_id, now=now_utc())
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    g.user = None
    return render_template("account/deleted.html", bookings=report.bookings)
