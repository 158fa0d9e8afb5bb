"""CSRF protection for the review UI's form posts: the synchronizer-token pattern.

Each browser session has a random token (kept in the signed session cookie, see
``session.py``); every form carries it in a hidden ``csrf_token`` field and every POST
must send it back. A forged cross-site form cannot read the token, so it cannot send it.
``SameSite=Lax`` on the cookie is a second line, not the only one.

Forms are read here as well (``application/x-www-form-urlencoded`` only, size-capped
before reading) so that no multipart parser is needed and no oversized body is buffered.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request

from services.review.session import WebSession

FIELD = "csrf_token"
#: the largest form body read; review forms are a few hundred bytes
MAX_FORM_BYTES = 16_384


class CsrfError(HTTPException):
    """A POST without the session's CSRF token: answered 403."""

    def __init__(self, reason: str) -> None:
        super().__init__(status_code=403, detail=f"CSRF check failed: {reason}")


async def read_form(request: Request, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The urlencoded form fields of ``request`` (last value wins), at most ``max_bytes``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type and request.headers.get("content-length", "0") == "0":
        return {}  # an empty POST: no fields, so the CSRF check fails with 403
    if content_type != "application/x-www-form-urlencoded":
        raise HTTPException(status_code=415, detail="expected an urlencoded form")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise HTTPException(status_code=413, detail=f"form larger than {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise HTTPException(status_code=413, detail=f"form larger than {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise HTTPException(status_code=400, detail="form is not UTF-8") from error
    try:
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=32))
    except ValueError as error:  # more fields than any review form has
        raise HTTPException(status_code=400, detail="too many form fields") from error


def check_csrf(session: WebSession | None, form: dict[str, str]) -> None:
    """Raise :class:`CsrfError` unless ``form`` carries ``session``'s token."""
    if session is None:
        raise CsrfError("no session cookie")
    sent = form.get(FIELD, "")
    if not sent:
        raise CsrfError("token missing")
    if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise CsrfError("token does not match")
