"""Error pages in the visitor's language; JSON with a stable code under /api/."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

PAGES = {
    400: (_l("Something was wrong with the request"), _l("Check what you wrote and try again.")),
    401: (_l("Please log in"), _l("You need to log in to see this page.")),
    403: (_l("Not allowed"), _l("You do not have permission to see this.")),
    404: (_l("Not found"), _l("The page does not exist, or you may not see it.")),
    405: (_l("Not allowed"), _l("That action is not possible here.")),
    413: (_l("The file is too large"), _l("Choose a smaller file.")),
    429: (_l("Too many attempts"), _l("Wait a minute and try again.")),
    500: (_l("Something went wrong"), _l("Try again in a while. Nothing you saved was lost.")),
}
CODES = {
    400: "request.bad",
    401: "auth.required",
    403: "access.denied",
    404: "not_found",
    405: "method.not_allowed",
    413: "request.too_large",
    429: "rate.limited",
    500: "internal",
}


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if request.path.startswith("/api/"):
            code = CODES.get(status, "request.bad")
            return jsonify({"error": {"code": code, "message": exc.description}}), status
        title, message = PAGES.get(status, PAGES[400])
        return render_template("errors/error.html", title=title, message=message), status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        app.logger.exception("unexpected error on %s %s", request.method, request.url_rule)
        if request.path.startswith("/api/"):
            return jsonify({"error": {"code": "internal", "message": "internal error"}}), 500
        title, message = PAGES[500]
        return render_template("errors/error.html", title=title, message=message), 500
