"""The calendar-app command: one summary line on success, `error: code: message` on failure."""

import json

import pytest
from sqlalchemy import func, select

from calendar_app.cli import main
from calendar_app.models import AuditEvent, Person, Provider, ProviderKind, Role, User
from tests.conftest import ICS
from tests.support.helpers import event, vcalendar


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args):
        return runner.invoke(main, list(args))

    return run


@pytest.mark.parametrize("form", ["19900101-2385", "199001012385", "900101-2385"])
def test_person_add_accepts_the_usual_forms_and_stores_twelve_digits(cli, session, form):
    result = cli(
        "person",
        "add",
        "--personnummer",
        form,
        "--name",
        "Alva Lindqvist",
        "--phone",
        "070-123 45 67",
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1 and "19900101-****" in result.output
    person = session.scalars(select(Person)).one()
    assert (person.personnummer, person.phone_e164) == ("199001012385", "+46701234567")


def test_person_add_accepts_the_plus_form_for_centenarians(cli, session):
    assert cli("person", "add", "--personnummer", "900101+9802", "--name", "Gammal").exit_code == 0
    assert session.scalars(select(Person.personnummer)).one() == "189001019802"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--personnummer", "19900101-2384", "--name", "X"], "personnummer.checksum"),
        (["--personnummer", "19900101-2385", "--name", "X", "--phone", "123"], "phone.invalid"),
        (["--personnummer", "19900101-2385", "--name", "  "], "person.name_missing"),
    ],
)
def test_person_add_failures_print_a_code_and_never_the_number(cli, session, args, code):
    result = cli("person", "add", *args)
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {code}: ")
    assert "Traceback" not in result.output and "199001012384" not in result.output
    assert "0101-238" not in result.output
    assert session.scalars(select(Person)).all() == []


def test_adding_the_same_person_twice_is_refused(cli):
    cli("person", "add", "--personnummer", "199001012385", "--name", "Alva")
    result = cli("person", "add", "--personnummer", "19900101-2385", "--name", "Alva")
    assert result.exit_code == 1 and result.output.startswith("error: person.exists: ")


def test_a_usage_error_exits_with_two(cli):
    assert cli("person", "add", "--name", "Alva").exit_code == 2


def test_import_prints_one_summary_line_and_is_idempotent(cli, tmp_path):
    cli("person", "add", "--personnummer", "199001012385", "--name", "Alva")
    path = tmp_path / "cal.ics"
    path.write_bytes(
        vcalendar(
            event("a", ":20261210T100000Z", ":20261210T110000Z"), "UID:broken\nDTSTART:nonsense"
        )
    )
    args = [
        "import",
        "--person",
        "19900101-2385",
        "--provider",
        "Vuxenpsykiatrin Växjö",
        "--kind",
        "region",
        str(path),
    ]
    first = cli(*args)
    assert first.exit_code == 0
    assert first.stdout.strip() == ("added 1, updated 0, cancelled 0, unchanged 0, skipped 1")
    assert "skipped broken: event.damaged" in first.stderr
    second = cli(*args)
    assert second.stdout.strip() == "added 0, updated 0, cancelled 0, unchanged 1, skipped 1"


def test_import_of_a_broken_file_fails_cleanly(cli):
    cli("person", "add", "--personnummer", "199001012385", "--name", "Alva")
    result = cli(
        "import", "--person", "199001012385", "--provider", "X", str(ICS / "libical/zday.ics")
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: ics.damaged: ")


def test_import_of_a_file_with_no_readable_event_fails_and_says_why(cli, tmp_path, session):
    cli("person", "add", "--personnummer", "199001012385", "--name", "Alva")
    path = tmp_path / "cal.ics"
    path.write_bytes(vcalendar("UID:broken\nDTSTART:nonsense", "UID:late\nSUMMARY:no start"))
    result = cli("import", "--person", "199001012385", "--provider", "Ny enhet", str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[:2] == [
        "skipped broken: event.damaged: unreadable DTSTART",
        "skipped late: event.no_start: the event has no DTSTART",
    ]
    assert lines[2].startswith("error: ics.nothing_usable: ")
    assert session.scalar(select(func.count()).where(Provider.name == "Ny enhet")) == 0


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--kind", "hospital"], "provider.kind"),
        (["--person", "19900101-2384"], "personnummer.checksum"),
        (["--person", "19800102-2386"], "person.not_found"),
    ],
)
def test_import_refuses_bad_arguments_with_codes(cli, args, code):
    cli("person", "add", "--personnummer", "199001012385", "--name", "Alva")
    base = {"--person": "199001012385", "--provider": "X"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [x for pair in base.items() for x in pair]
    result = cli("import", *flat, str(ICS / "recurring-ical-events/one_day_event.ics"))
    assert result.exit_code == 1 and result.output.startswith(f"error: {code}: ")


def test_a_missing_file_is_a_usage_error(cli):
    result = cli("import", "--person", "199001012385", "--provider", "X", "/no/such/file.ics")
    assert result.exit_code == 2


def test_calendar_prints_json_in_local_time_with_overlaps(cli, tmp_path, session):
    cli("person", "add", "--personnummer", "199001012385", "--name", "Alva")
    path = tmp_path / "cal.ics"
    path.write_bytes(
        vcalendar(
            event(
                "a",
                ";TZID=Europe/Stockholm:20261210T100000",
                ";TZID=Europe/Stockholm:20261210T110000",
            ),
            event(
                "b",
                ";TZID=Europe/Stockholm:20261210T103000",
                ";TZID=Europe/Stockholm:20261210T113000",
                STATUS="CANCELLED",
            ),
            event(
                "c",
                ";TZID=Europe/Stockholm:20261210T105000",
                ";TZID=Europe/Stockholm:20261210T120000",
            ),
        )
    )
    cli("import", "--person", "199001012385", "--provider", "X", str(path))
    result = cli(
        "calendar",
        "--person",
        "199001012385",
        "--from",
        "2026-12-10",
        "--to",
        "2026-12-11",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert [(i["uid"], i["start"], i["status"], i["overlaps"]) for i in items] == [
        ("a", "2026-12-10T10:00:00+01:00", "confirmed", ["c"]),
        ("b", "2026-12-10T10:30:00+01:00", "cancelled", []),
        ("c", "2026-12-10T10:50:00+01:00", "confirmed", ["a"]),
    ]
    text = cli(
        "calendar",
        "--person",
        "199001012385",
        "--from",
        "2026-12-10",
        "--to",
        "2026-12-11",
        "--format",
        "text",
    )
    assert len(text.stdout.strip().splitlines()) == 3 and "OVERLAP" in text.stdout
    assert session.scalars(select(AuditEvent.actor_label)).all() == [
        "operator (command line)",
        "operator (command line)",
    ]


@pytest.mark.parametrize(
    ("first", "end", "code"),
    [
        ("2026-01-01", "2027-03-01", "range.too_long"),
        ("2026-01-01", "tomorrow", "range.date_format"),
    ],
)
def test_calendar_range_errors(cli, first, end, code):
    cli("person", "add", "--personnummer", "199001012385", "--name", "Alva")
    result = cli("calendar", "--person", "199001012385", "--from", first, "--to", end)
    assert result.exit_code == 1 and result.output.startswith(f"error: {code}: ")


def test_user_add_makes_the_first_administrator_who_can_then_sign_in(app, client, session):
    runner = app.test_cli_runner()
    made = runner.invoke(
        main,
        ["user", "add", "Ingrid", "--name", "Ingrid Förvaltare", "--role", "admin"],
        input="ett långt lösenord\nett långt lösenord\n",
    )
    assert made.exit_code == 0, made.output
    assert "ingrid can now sign in as admin" in made.output
    assert "ett långt lösenord" not in made.output  # asked for hidden, never echoed
    user = session.scalars(select(User).where(User.username == "ingrid")).one()
    assert user.role == Role.ADMIN and user.display_name == "Ingrid Förvaltare"
    session.commit()
    signed_in = client.post("/login", data={"username": "ingrid", "password": "ett långt lösenord"})
    assert signed_in.status_code == 302 and "/login" not in signed_in.headers["Location"]


@pytest.mark.parametrize(
    ("args", "password", "code"),
    [
        (["taken", "--role", "admin"], "ett långt lösenord", "user.username"),
        (["ny", "--role", "admin"], "kort", "password.too_short"),
        (["ny", "--role", "caregiver"], "ett långt lösenord", "user.unit_missing"),
        (
            ["ny", "--role", "caregiver", "--unit", "Ingen sådan"],
            "ett långt lösenord",
            "unit.not_found",
        ),
    ],
)
def test_user_add_refuses_with_a_code_and_makes_nothing(app, session, args, password, code):
    session.add(User(username="taken", display_name="T", password_hash="x", role=Role.ADMIN))
    session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["user", "add", *args, "--name", "N", "--password", password])
    assert result.exit_code == 1
    assert f"error: {code}:" in result.output
    assert session.scalar(select(func.count()).select_from(User)) == 1
    session.commit()


def test_user_add_makes_a_caregiver_at_a_unit(app, session):
    unit = Provider(name="Vuxenpsykiatrin Växjö", kind=ProviderKind.REGION)
    session.add(unit)
    session.commit()
    result = app.test_cli_runner().invoke(
        main,
        ["user", "add", "karin", "--name", "Karin", "--role", "caregiver"]
        + ["--unit", "Vuxenpsykiatrin Växjö", "--password", "ett långt lösenord"],
    )
    assert result.exit_code == 0, result.output
    user = session.scalars(select(User).where(User.username == "karin")).one()
    assert user.role == Role.CAREGIVER and user.provider_id == unit.id
    session.commit()
