"""Every UI text has a Swedish translation, and the compiled catalogue matches the source."""

import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.conftest import ROOT

CATALOG = ROOT / "calendar_app/translations/sv/LC_MESSAGES"


def test_every_message_in_the_code_and_templates_has_a_swedish_translation(tmp_path: Path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "--no-location",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as f:
        wanted = {m.id for m in read_po(f) if m.id}
    with (CATALOG / "messages.po").open("rb") as f:
        catalog = read_po(f)
    translated = {m.id for m in catalog if m.id and _filled(m.string) and not m.fuzzy}
    assert wanted - translated == set()


def _filled(string: str | tuple[str, ...] | list[str]) -> bool:
    # A plural message has one string per form; every form must be there.
    return all(string) if isinstance(string, (tuple, list)) else bool(string)


def _entries(messages) -> dict:
    entries = {}
    for m in messages:
        if not m.id:
            continue
        plural = isinstance(m.id, (tuple, list))
        entries[tuple(m.id) if plural else m.id] = tuple(m.string) if plural else m.string
    return entries


def test_the_compiled_catalogue_matches_the_po_file():
    with (CATALOG / "messages.po").open("rb") as f:
        po = _entries(read_po(f))
    with (CATALOG / "messages.mo").open("rb") as f:
        mo = _entries(read_mo(f))
    assert mo == po
