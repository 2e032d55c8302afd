"""Every form field in every template has a label (WCAG 2.1 1.3.1, 3.3.2; issue 11).

axe checks the fields of the pages the browser tests open; this reads every template, so a
form on a page no browser test opens (an invitation, the deletion page, an admin form) is
held to the same rule.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
NOT_FIELDS = {"hidden", "submit", "button", "reset", "image"}


class _Fields(HTMLParser):
    """The fields of one template, and the ids its labels name. Jinja's tags are text to
    this parser; an id written with an expression matches a label written with the same."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[int, str, dict[str, str | None], bool]] = []
        self.labelled_ids: set[str] = set()
        self._open_labels = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "label":
            self._open_labels += 1
            if named.get("for"):
                self.labelled_ids.add(str(named["for"]))
        elif (
            tag in ("input", "select", "textarea")
            and (named.get("type") or "").lower() not in NOT_FIELDS
        ):
            self.fields.append((self.getpos()[0], tag, named, self._open_labels > 0))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._open_labels:
            self._open_labels -= 1


def _read(path: Path) -> _Fields:
    parser = _Fields()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def unlabelled(path: Path, root: Path = TEMPLATES) -> list[str]:
    parser = _read(path)
    return [
        f"{path.relative_to(root)}:{line} <{tag} name={named.get('name')}>"
        for line, tag, named, inside_label in parser.fields
        if not (
            inside_label
            or named.get("aria-label")
            or named.get("aria-labelledby")
            or (named.get("id") and named["id"] in parser.labelled_ids)
        )
    ]


def test_every_form_field_in_every_template_has_a_label():
    templates = sorted(TEMPLATES.rglob("*.html"))
    fields = sum(len(_read(path).fields) for path in templates)
    assert fields > 50  # the parser does see the forms
    assert [problem for path in templates for problem in unlabelled(path)] == []


@pytest.mark.parametrize(
    "markup",
    [
        '<input id="a" name="a">',  # no label at all
        '<label for="b">B</label><input id="a" name="a">',  # a label for another field
        '<select name="s"></select>',
        "<label>Text</label><textarea name='t'></textarea>",  # label closed before the field
    ],
)
def test_the_check_finds_a_field_without_a_label(tmp_path, markup):
    page = tmp_path / "page.html"
    page.write_text(f"<form>{markup}</form>", encoding="utf-8")
    assert len(unlabelled(page, tmp_path)) == 1
    labelled = tmp_path / "labelled.html"
    labelled.write_text('<form><label for="x">X</label><input id="x"></form>', encoding="utf-8")
    assert unlabelled(labelled, tmp_path) == []
