"""The deployment examples in deploy/ start exactly what the scale-out tests start, and
systemd accepts their units; gunicorn's configuration follows the environment."""

from __future__ import annotations

import configparser
import importlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
VENV_BIN = "/opt/calendar-app/venv/bin/"
# The commands tests/ops/test_scale_out.py runs as real processes, and `init-db` before them.
TESTED = {
    "calendar-app-web.service": ["gunicorn", "-c", "python:calendar_app.gunicorn_conf"],
    "calendar-app-scheduler@.service": ["calendar-app", "scheduler"],
    "calendar-app-migrate.service": ["calendar-app", "init-db"],
}


def _service(unit: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit)
    return parser["Service"]


def test_every_unit_starts_a_tested_command():
    assert {unit.name for unit in UNITS} == set(TESTED)
    for unit in UNITS:
        command = shlex.split(_service(unit)["ExecStart"])
        assert command[0].startswith(VENV_BIN)
        assert [command[0].removeprefix(VENV_BIN), *command[1:]] == TESTED[unit.name]


def test_the_long_running_units_stop_gracefully_before_systemd_kills():
    graceful = 30  # gunicorn_conf's default CALENDAR_APP_GRACEFUL_SECONDS
    for name in ("calendar-app-web.service", "calendar-app-scheduler@.service"):
        service = _service(DEPLOY / "systemd" / name)
        assert service["KillSignal"] == "SIGTERM"
        assert int(service["TimeoutStopSec"]) > graceful


def test_the_container_runs_the_same_web_command():
    text = (DEPLOY / "Containerfile").read_text()
    assert 'CMD ["gunicorn", "-c", "python:calendar_app.gunicorn_conf"]' in text
    assert "STOPSIGNAL SIGTERM" in text and "/livez" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not here")
def test_systemd_accepts_the_units(tmp_path):
    bin_dir = str(Path(sys.executable).parent) + "/"
    env_file = DEPLOY / "systemd" / "calendar-app.env"
    for unit in UNITS:
        text = unit.read_text().replace(VENV_BIN, bin_dir)
        text = text.replace("/etc/calendar-app/calendar-app.env", str(env_file))
        (tmp_path / unit.name).write_text(text)
        result = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / unit.name)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0 and result.stderr == "", (unit.name, result.stderr)


def test_gunicorn_takes_its_settings_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CALENDAR_APP_BIND", "127.0.0.1:9001,127.0.0.1:9002")
    monkeypatch.setenv("CALENDAR_APP_WEB_WORKERS", "7")
    monkeypatch.setenv("CALENDAR_APP_GRACEFUL_SECONDS", "12")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    sys.modules.pop("calendar_app.gunicorn_conf", None)
    conf = importlib.import_module("calendar_app.gunicorn_conf")
    try:
        assert conf.bind == ["127.0.0.1:9001", "127.0.0.1:9002"]
        assert conf.workers == 7 and conf.graceful_timeout == 12
        assert conf.preload_app is False  # each worker builds its own engine and threads
        assert conf.wsgi_app == "calendar_app:create_app()"
        (tmp_path / "metrics").mkdir()
        (tmp_path / "metrics" / "counter_1.db").write_bytes(b"old")
        conf.on_starting(None)  # a restart does not add old counts to new ones
        assert list((tmp_path / "metrics").iterdir()) == []
    finally:
        sys.modules.pop("calendar_app.gunicorn_conf", None)
