"""Personkalendern: a person-bound calendar merging region and municipality bookings.

:func:`create_app` builds everything; nothing starts at import.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from calendar_app import config
from calendar_app.clock import Clock, SystemClock
from calendar_app.db import make_engine, make_fetch_engine, make_session_factory
from calendar_app.sms import ConsoleSender, SmsSender

PACKAGE_DIR = Path(__file__).resolve().parent


def _template_folder() -> str:
    # An installed wheel carries the templates inside the package; a source checkout
    # (and an editable install) has them at the top level.
    packaged = PACKAGE_DIR / "templates"
    return str(packaged if packaged.is_dir() else PACKAGE_DIR.parent / "templates")


def _sender(app: Flask) -> SmsSender:
    config = app.config
    if not config["TWILIO_ACCOUNT_SID"]:
        return ConsoleSender()
    from calendar_app.twilio_sender import TwilioSender, TwilioSettings

    return TwilioSender(
        TwilioSettings(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            from_number=config["TWILIO_FROM"],
            messaging_service_sid=config["TWILIO_MESSAGING_SERVICE_SID"],
            api_base_url=config["TWILIO_API_BASE_URL"],
            status_callback=f"{config['PUBLIC_BASE_URL']}/webhooks/twilio/status",
        )
    )


def _start_scheduler_on_first_request(app: Flask) -> None:
    # Only a process that serves requests runs the jobs: not the reloader's watcher, not
    # `calendar-app init-db`; start_embedded itself refuses to run inside gunicorn.
    from calendar_app.scheduler.jobs import start_embedded

    lock = threading.Lock()
    tried: list[bool] = []

    @app.before_request
    def _start() -> None:
        if tried:
            return
        with lock:  # two first requests at once start one scheduler
            if not tried:
                tried.append(True)
                start_embedded(app)


def _configure_logging(app: Flask) -> None:
    # JSON lines in production; the development default (and the tests) keep today's
    # lines unless LOG_CONFIGURE asks. Done before anything logs or touches app.logger.
    wanted = app.config["LOG_CONFIGURE"]
    if wanted is None:
        wanted = app.config["LOG_FORMAT"] == "json"
    if wanted:
        from calendar_app.logs import configure_logging

        configure_logging(app.config)
        app.extensions["log_requests"] = True  # each request's own summary line


def create_app(
    test_config: dict[str, Any] | None = None,
    *,
    sms_sender: SmsSender | None = None,
    clock: Clock | None = None,
) -> Flask:
    """Build the application: config -> database -> collaborators -> blueprints -> CLI.

    ``clock`` is where every part of the app takes "now" from (the system clock unless
    given); ``sms_sender`` replaces the sender the settings would choose.
    """
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=_template_folder(),
        static_folder="static",
    )
    config.load(app, test_config)
    _configure_logging(app)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    app.extensions["clock"] = clock or SystemClock()
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["engine"] = engine
    app.extensions["session_factory"] = make_session_factory(engine)
    app.extensions["fetch_engine"] = make_fetch_engine(engine, app.config["FETCH_CONNECTIONS"])
    from calendar_app.services.feeds import keep_feeds_current

    app.extensions["feed_renderer"] = keep_feeds_current(
        app.extensions["session_factory"], app.extensions["clock"]
    )
    app.extensions["sms_sender"] = sms_sender or _sender(app)

    from calendar_app.web import init_app as init_web

    init_web(app)
    if app.config["SCHEDULER"] == "embedded":
        _start_scheduler_on_first_request(app)
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # The client's address and scheme as the trusted proxies saw them; without this,
        # every visitor would share the proxy's address for throttling and rate limits.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    return app
