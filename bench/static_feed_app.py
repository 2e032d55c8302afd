"""The "precomputed" side of the feed benchmark: a WSGI app for gunicorn that answers every
request with the same bytes, read once at start-up from the file named by
``PK_BENCH_FEED_FILE``, with the feed's Content-Type. Nothing else: no database, no Flask.

    PK_BENCH_FEED_FILE=feed.ics gunicorn -w 1 -b 127.0.0.1:PORT bench.static_feed_app:app
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

BODY = Path(os.environ["PK_BENCH_FEED_FILE"]).read_bytes()
HEADERS = [
    ("Content-Type", "text/calendar; charset=utf-8"),
    ("Content-Length", str(len(BODY))),
]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Serve the precomputed feed bytes."""
    start_response("200 OK", HEADERS)
    return [BODY]
