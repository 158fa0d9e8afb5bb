"""The review UI's browser session: a signed, timestamped cookie.

The cookie holds only the account name (``None`` before login), a digest of its password
hash at login (so a password reset ends every session), the CSRF token and at most one
flash message; it is signed with ``itsdangerous`` so the browser cannot change
it, and it carries its own issue time so a stale cookie is refused after
``max_age_seconds`` even if the browser kept it. Every response that changes the session
re-issues the cookie, so the expiry counts from the reviewer's last action (idle timeout).

Flags: ``HttpOnly`` (scripts cannot read it), ``SameSite=Lax`` (no cross-site POSTs carry
it) and ``Secure`` unless the environment is development.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from services.review.settings import ReviewSettings

DEFAULT_COOKIE_NAME = "tagstream_review_session"
_SALT = "tagstream.review.session.v1"
MIN_SECRET_CHARS = 32
FlashKind = Literal["ok", "error"]


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Flash:
    """A one-shot message shown on the next page (post/redirect/get)."""

    kind: FlashKind
    text: str


@dataclass(frozen=True)
class WebSession:
    """What the browser session knows: who is logged in and the CSRF token."""

    csrf_token: str = field(default_factory=new_csrf_token)
    account: str | None = None
    #: a digest of the account's password hash at login: a reset password ends the session
    credential: str | None = None
    flash: Flash | None = None

    def with_flash(self, kind: FlashKind, text: str) -> WebSession:
        return replace(self, flash=Flash(kind, text))

    def without_flash(self) -> WebSession:
        return replace(self, flash=None)

    def logged_in(self, account: str, credential: str) -> WebSession:
        """A fresh session for ``account``: a new CSRF token, so nothing issued before
        login (which an attacker might have planted) stays valid after it."""
        return WebSession(account=account, credential=credential)


class SessionCookie:
    """Reads and writes :class:`WebSession` as a signed cookie."""

    def __init__(
        self,
        secret: str,
        *,
        max_age_seconds: int,
        secure: bool,
        cookie_name: str = DEFAULT_COOKIE_NAME,
    ) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"the session secret needs at least {MIN_SECRET_CHARS} characters")
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age_seconds = max_age_seconds
        self.secure = secure
        self.cookie_name = cookie_name

    @classmethod
    def from_settings(cls, settings: ReviewSettings) -> SessionCookie:
        """The cookie as configured. Without a configured secret a random one is drawn:
        sessions then end when the process restarts and are not shared between replicas."""
        configured = settings.review_session_secret
        secret = configured.get_secret_value() if configured else secrets.token_urlsafe(48)
        return cls(
            secret,
            max_age_seconds=settings.review_session_max_age_seconds,
            secure=settings.session_cookie_secure,
            cookie_name=settings.review_session_cookie_name,
        )

    def load(self, request: Request) -> WebSession | None:
        """The request's session, or None when absent, tampered with or expired."""
        raw = request.cookies.get(self.cookie_name)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self.max_age_seconds)
        except BadSignature:  # also SignatureExpired, its subclass
            return None
        return _decode(data)

    def save(self, response: Response, session: WebSession) -> None:
        response.set_cookie(
            self.cookie_name,
            self._serializer.dumps(_encode(session)),
            max_age=self.max_age_seconds,
            path="/",
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(
            self.cookie_name, path="/", httponly=True, secure=self.secure, samesite="lax"
        )


def _encode(session: WebSession) -> dict[str, Any]:
    data: dict[str, Any] = {"c": session.csrf_token, "a": session.account}
    if session.credential is not None:
        data["k"] = session.credential
    if session.flash is not None:
        data["f"] = [session.flash.kind, session.flash.text]
    return data


def _decode(data: object) -> WebSession | None:
    if not isinstance(data, dict):
        return None
    csrf, account, flash = data.get("c"), data.get("a"), data.get("f")
    credential = data.get("k")
    if not isinstance(csrf, str) or not csrf or not (account is None or isinstance(account, str)):
        return None
    decoded_flash = None
    if isinstance(flash, list) and len(flash) == 2 and flash[0] in ("ok", "error"):
        decoded_flash = Flash(flash[0], str(flash[1]))
    return WebSession(
        csrf_token=csrf,
        account=account,
        credential=credential if isinstance(credential, str) else None,
        flash=decoded_flash,
    )
