"""Twilio's delivery reports: signature-verified, then the reminder's state follows."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request
from flask.typing import ResponseReturnValue

from calendar_app.domain.errors import DomainError
from calendar_app.services import replies
from calendar_app.services.dispatch import record_delivery
from calendar_app.twilio_sender import MessagingResponse, valid_signature
from calendar_app.web import db, now_utc

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _verified() -> None:
    """Refuse (403) anything not signed with our auth token over our public URL."""
    token = current_app.config["TWILIO_AUTH_TOKEN"]
    if not token:
        abort(404)
    url = current_app.config["PUBLIC_BASE_URL"] + request.full_path.rstrip("?")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not valid_signature(token, url, request.form.to_dict(), signature):
        abort(403)


@bp.post("/twilio/status")
def twilio_status() -> ResponseReturnValue:
    """MessageStatus delivered / undelivered / failed for a message we sent."""
    _verified()
    record_delivery(
        db(),
        sid=request.form.get("MessageSid", ""),
        status=request.form.get("MessageStatus", ""),
        error_code=request.form.get("ErrorCode", ""),
        now=now_utc(),
    )
    return "", 204


@bp.post("/twilio/inbound")
def twilio_inbound() -> ResponseReturnValue:
    """A reply to a reminder: STOPP, START, AVBOKA or a message for the caregivers."""
    _verified()
    try:
        reply = replies.receive(
            db(),
            from_phone=request.form.get("From", ""),
            body=request.form.get("Body", ""),
            now=now_utc(),
        )
    except DomainError:
        db().rollback()
        return Response(str(MessagingResponse()), mimetype="text/xml")  # not a phone number
    answer = MessagingResponse()
    if reply.answer:
        answer.message(reply.answer)
    return Response(str(answer), mimetype="text/xml")
