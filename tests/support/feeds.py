"""A provider's calendar server on 127.0.0.1 whose every path the test sets: a calendar
(with ETag and 304), an error status, a web page, a slow answer or damaged bytes."""

from __future__ import annotations

import hashlib
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: object, **kwargs: object) -> None:
        pass


@dataclass
class Answer:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/calendar; charset=utf-8"
    delay: float = 0.0
    etag: bool = True  # answer If-None-Match with 304 when the body is unchanged


class FeedServer:
    """Serve ``answers[path]``; count requests and the most that ran at once per path."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: Counter[str] = Counter()
        self.running: Counter[str] = Counter()
        self.most_at_once: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.base = ""

    def set(self, path: str, body: bytes = b"", **kw: object) -> str:
        self.answers[path] = Answer(body=body, **kw)  # type: ignore[arg-type]
        return self.base + path

    def __call__(self, environ: dict[str, object], start_response: object) -> object:
        request = Request(environ)
        path = request.path
        with self.lock:
            self.requests[path] += 1
            self.running[path] += 1
            self.most_at_once[path] = max(self.most_at_once[path], self.running[path])
        try:
            response = self._answer(request)
        finally:
            with self.lock:
                self.running[path] -= 1
        return response(environ, start_response)  # type: ignore[operator]

    def _answer(self, request: Request) -> Response:
        answer = self.answers.get(request.path)
        if answer is None:
            return Response(status=404)
        if answer.delay:
            time.sleep(answer.delay)
        if answer.status != 200:
            return Response(answer.body, status=answer.status)
        tag = '"' + hashlib.sha256(answer.body).hexdigest()[:16] + '"'
        if answer.etag and request.headers.get("If-None-Match") == tag:
            return Response(status=304, headers={"ETag": tag})
        headers = {"ETag": tag} if answer.etag else {}
        return Response(answer.body, content_type=answer.content_type, headers=headers)


@contextmanager
def serving(app: Any, tls: ssl.SSLContext | None = None, *, quiet: bool = True) -> Iterator[str]:
    """Run the WSGI ``app`` on 127.0.0.1 (a free port, threaded); yield its origin. Quiet
    unless asked: then werkzeug writes its access lines, as a real server would."""
    handler = _Quiet if quiet else WSGIRequestHandler
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=handler, ssl_context=tls
    )
    # A short poll interval: shutdown() waits for it, and many tests start and stop one.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def feed_server() -> Iterator[FeedServer]:
    feeds = FeedServer()
    with serving(feeds) as origin:
        feeds.base = origin
        yield feeds
