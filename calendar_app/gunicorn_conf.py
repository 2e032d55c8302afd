"""gunicorn's configuration for production: ``gunicorn -c python:calendar_app.gunicorn_conf``.

Every setting can be changed by the environment without editing this file (see
``docs/production.md``). The web workers are stateless: they share nothing but the
database, so any number of them, on any number of machines, may serve one county. The
scheduler jobs never run here; ``calendar-app scheduler`` runs them beside the workers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


# The app is built in each worker, never in the master: a database engine (its pool of
# connections) and the feed renderer's thread must not be shared across a fork.
wsgi_app = "calendar_app:create_app()"
preload_app = False

bind = os.environ.get("CALENDAR_APP_BIND", "127.0.0.1:8000").split(",")
# Threads let a worker wait on PostgreSQL for one request while it serves another; the
# default suits a 2-core machine (see docs/benchmarks.md, "Load test").
workers = _int("CALENDAR_APP_WEB_WORKERS", 2 * (os.cpu_count() or 1) + 1)
worker_class = "gthread"
threads = _int("CALENDAR_APP_WEB_THREADS", 4)

# Graceful shutdown: on SIGTERM a worker stops accepting, finishes the requests it has
# within `graceful_timeout`, and exits; systemd and the container wait a little longer.
graceful_timeout = _int("CALENDAR_APP_GRACEFUL_SECONDS", 30)
timeout = _int("CALENDAR_APP_WORKER_TIMEOUT", 60)
keepalive = 5
# A worker is replaced after a number of requests, so a slow leak never takes a host down.
max_requests = _int("CALENDAR_APP_MAX_REQUESTS", 5000)
max_requests_jitter = max_requests // 10

# Requests may carry at most this much header; bodies are limited by the app itself.
limit_request_field_size = 8190

# Behind a reverse proxy the client's address comes from X-Forwarded-For, which the app
# trusts only from CALENDAR_APP_TRUSTED_PROXIES hops (ProxyFix); gunicorn itself trusts
# no forwarded scheme unless told.
forwarded_allow_ips = os.environ.get("CALENDAR_APP_FORWARDED_ALLOW_IPS", "127.0.0.1")

# Logs go to stdout and stderr for systemd's journal or the container runtime; the access
# log line names no token (the app cuts feed tokens out of it, see web/feeds.py).
accesslog = os.environ.get("CALENDAR_APP_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("CALENDAR_APP_LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# CALENDAR_APP_LOG_FORMAT=json: gunicorn's own lines are JSON too, through the app's handler
# (calendar_app/logs.py: scrubbed; the access line carries the request id the app echoed).
if os.environ.get("CALENDAR_APP_LOG_FORMAT", "").lower() == "json":
    from calendar_app.logs import gunicorn_logconfig as _gunicorn_logconfig

    logconfig_dict = _gunicorn_logconfig(loglevel, access_log=accesslog is not None)

# gunicorn 24+ opens a control socket at one fixed path per user: two instances on one
# host would fight over it, and nothing here uses it.
control_socket_disable = True

# Prometheus counters and histograms live per process; in multi-process mode each worker
# writes them to files in one directory, which `/metrics` sums. The directory is emptied
# when the master starts, so a restart does not add old counts to new ones.
_METRICS_DIR = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    str(Path(tempfile.gettempdir()) / f"calendar-app-metrics-{os.getuid()}"),
)


def on_starting(server: Any) -> None:
    shutil.rmtree(_METRICS_DIR, ignore_errors=True)
    Path(_METRICS_DIR).mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    # A dead worker's live gauges must stop counting; its counters are kept (summed).
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
