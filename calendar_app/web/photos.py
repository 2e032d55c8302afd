"""Practitioner photos from our own site: a page never makes the browser call a provider."""

from __future__ import annotations

from flask import Blueprint, abort, make_response, request
from flask.typing import ResponseReturnValue

from calendar_app.services import photos
from calendar_app.web import db
from calendar_app.web.auth import login_required

bp = Blueprint("photos", __name__)


@bp.get("/photos/<string:digest>.jpg")
@login_required
def show(digest: str) -> ResponseReturnValue:
    """A stored photo. Its name is the digest of bytes only we made, so it cannot be
    guessed from a provider's picture; it is still shown only to someone logged in."""
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        abort(404)
    photo = photos.find(db(), digest)
    if photo is None:
        abort(404)
    etag = f'"{photo.digest}"'
    if request.headers.get("If-None-Match") == etag:
        return "", 304, {"ETag": etag}
    response = make_response(photo.data)
    response.headers["Content-Type"] = photo.content_type
    response.headers["ETag"] = etag
    # The bytes behind a digest never change; the browser may keep them, nobody between.
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
