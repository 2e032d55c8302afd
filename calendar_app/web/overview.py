"""Min översikt on one paper: a print-ready page and the same as a PDF."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from flask import Blueprint, Response, abort, current_app, render_template
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from fpdf import FPDF

from calendar_app.models import Person
from calendar_app.services.access import AccessDenied
from calendar_app.services.overview import Overview, read_overview
from calendar_app.web import db, now_utc
from calendar_app.web.auth import current_actor, login_required
from calendar_app.web.formatting import time_only

bp = Blueprint("overview", __name__)


def _overview(person_id: int) -> Overview:
    person = db().get(Person, person_id)
    if person is None:
        abort(403)
    today = now_utc().astimezone(ZoneInfo(person.timezone)).date()
    try:
        return read_overview(
            db(),
            current_actor(),
            person_id,
            today,
            now=now_utc(),
            max_days=current_app.config["MAX_QUERY_DAYS"],
        )
    except AccessDenied:
        abort(403)


@bp.get("/people/<int:person_id>/overview")
@login_required
def page(person_id: int) -> ResponseReturnValue:
    """The coming four weeks and every unit with whom to contact, ready to print."""
    overview = _overview(person_id)
    view = overview.calendar
    return render_template(
        "person/overview.html",
        overview=overview,
        view=view,
        last_day=view.end_day - timedelta(days=1),
    )


@bp.get("/people/<int:person_id>/overview.pdf")
@login_required
def pdf(person_id: int) -> ResponseReturnValue:
    """The same overview as a PDF of its own (A4)."""
    overview = _overview(person_id)
    return Response(
        overview_pdf(overview),
        mimetype="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="min-oversikt.pdf"'},
    )


def _latin(text: str) -> str:
    # The PDF's built-in fonts cover Windows-1252 (all Swedish letters); anything else
    # (a name in another script) is shown as "?" rather than failing the page.
    return text.encode("cp1252", "replace").decode("cp1252")


def overview_pdf(overview: Overview) -> bytes:
    """The overview as PDF bytes, in the visitor's language.

    Written with fpdf2's built-in Helvetica; uncompressed (a few kB of text), so that the
    words can be searched in the file.
    """
    view = overview.calendar
    locale = str(get_locale() or "sv")
    zone = view.timezone
    doc = FPDF(format="A4")
    doc.set_compression(False)
    doc.set_title(_latin(_("My overview")))
    doc.add_page()
    doc.set_font("Helvetica", "B", 18)
    doc.cell(
        0, 10, _latin(f"{_('My overview')}: {view.person_name}"), new_x="LMARGIN", new_y="NEXT"
    )
    doc.set_font("Helvetica", "", 11)
    last = view.first_day + timedelta(days=(view.end_day - view.first_day).days - 1)
    span = f"{_long(view.first_day, locale)} - {_long(last, locale)}"
    doc.cell(0, 7, _latin(span), new_x="LMARGIN", new_y="NEXT")
    doc.ln(3)
    doc.set_font("Helvetica", "B", 14)
    doc.cell(0, 9, _latin(_("Visits")), new_x="LMARGIN", new_y="NEXT")
    if not overview.days:
        doc.set_font("Helvetica", "", 11)
        doc.cell(0, 7, _latin(_("No visits in this period.")), new_x="LMARGIN", new_y="NEXT")
    for day, items in overview.days:
        doc.set_font("Helvetica", "B", 11)
        doc.cell(0, 7, _latin(_long(day, locale).capitalize()), new_x="LMARGIN", new_y="NEXT")
        doc.set_font("Helvetica", "", 11)
        for occ in items:
            when = (
                _("All day")
                if occ.all_day
                else f"{time_only(occ.start, zone)}-{time_only(occ.end, zone)}"
            )
            # What the page says of each visit (templates/person/overview.html).
            parts = [occ.title or _("(no title)")]
            if occ.provider:
                parts.append(occ.provider)
            if occ.location:
                parts.append(occ.location)
            if occ.mode == "phone":
                parts.append(_("Phone visit"))
            elif occ.mode == "video":
                parts.append(_("Video visit"))
            if occ.interpreter:
                language = f": {occ.interpreter_language}" if occ.interpreter_language else ""
                parts.append(_("Interpreter") + language)
            if occ.transport_needed:
                parts.append(_("Book transport"))
            if occ.status == "cancelled":
                parts.insert(0, _("Cancelled").upper())
            doc.multi_cell(
                0, 6, _latin(f"{when}  " + ", ".join(parts)), new_x="LMARGIN", new_y="NEXT"
            )
    doc.ln(3)
    doc.set_font("Helvetica", "B", 14)
    doc.cell(0, 9, _latin(_("Whom to contact")), new_x="LMARGIN", new_y="NEXT")
    for unit in overview.units:
        doc.set_font("Helvetica", "B", 11)
        doc.cell(0, 7, _latin(unit.name), new_x="LMARGIN", new_y="NEXT")
        doc.set_font("Helvetica", "", 11)
        lines = [
            f"{_('Contact')}: {unit.contact_name}" if unit.contact_name else "",
            f"{_('Phone')}: {unit.phone}" if unit.phone else "",
            unit.address or "",
        ]
        for line in filter(None, lines):
            doc.cell(0, 6, _latin(line), new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def _long(day: date, locale: str) -> str:
    return format_date(day, "EEEE d MMMM", locale=locale)
