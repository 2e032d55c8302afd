"""The "precomputed" side of the feed benchmark: a WSGI app for gunicorn that answers every
request with the same feed bytes, read once at start-up, with the feed's Content-Type:
the gzip-compressed bytes of ``PK_BENCH_FEED_GZIP_FILE`` (``Content-Encoding: gzip``) to a
client that takes gzip, as the app does, else the plain bytes of ``PK_BENCH_FEED_FILE``.
Nothing else: no database, no Flask.

    PK_BENCH_FEED_FILE=feed.ics PK_BENCH_FEED_GZIP_FILE=feed.ics.gz \\
        gunicorn -w 1 -b 127.0.0.1:PORT bench.static_feed_app:app
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

PLAIN = Path(os.environ["PK_BENCH_FEED_FILE"]).read_bytes()
PACKED = Path(os.environ["PK_BENCH_FEED_GZIP_FILE"]).read_bytes()
TYPE = ("Content-Type", "text/calendar; charset=utf-8")
PLAIN_HEADERS = [TYPE, ("Content-Length", str(len(PLAIN))), ("Vary", "Accept-Encoding")]
PACKED_HEADERS = [
    TYPE,
    ("Content-Length", str(len(PACKED))),
    ("Content-Encoding", "gzip"),
    ("Vary", "Accept-Encoding"),
]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Serve the precomputed feed bytes."""
    if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
        start_response("200 OK", PACKED_HEADERS)
        return [PACKED]
    start_response("200 OK", PLAIN_HEADERS)
    return [PLAIN]
