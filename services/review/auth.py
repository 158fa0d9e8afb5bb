"""Reviewer and admin accounts: API tokens kept as sha256 digests, passwords as scrypt hashes.

``CurrentReviewer`` (any account) and ``AdminOnly`` are the FastAPI dependencies of the
JSON API: ``Authorization: Bearer <token>``; 401 (``shared.security.Unauthorized``, the
one every service answers alike) without a valid token, 403 for a reviewer on an admin
endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.review.database import run_db
from services.review.schemas import Account, Role
from services.review.tables import ReviewAccountRow
from shared.security import Unauthorized

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
TOKEN_BYTES = 32


class Forbidden(Exception):
    """Authenticated, but the role does not allow this (HTTP 403)."""


class AccountExists(ValueError):
    """An account of that name exists already."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(digest.hex(), expected)


def create_account(
    session: Session, name: str, role: Role, now: datetime, password: str | None = None
) -> tuple[Account, str]:
    """Create an account; returns it with its API token (shown once, stored only hashed)."""
    if session.get(ReviewAccountRow, name) is not None:
        raise AccountExists(f"account {name!r} exists already")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        ReviewAccountRow(
            name=name,
            role=role,
            token_hash=token_digest(token),
            password_hash=hash_password(password) if password else None,
            created_at=now,
        )
    )
    session.flush()
    return Account(name=name, role=role), token


def list_accounts(session: Session) -> list[tuple[Account, datetime]]:
    rows = session.scalars(select(ReviewAccountRow).order_by(ReviewAccountRow.name))
    return [(Account(name=r.name, role=_role(r.role)), r.created_at) for r in rows]


def authenticate_token(session: Session, token: str) -> Account | None:
    """The account whose API token is ``token``, else None (lookup by digest, no timing leak)."""
    row = session.scalars(
        select(ReviewAccountRow).where(ReviewAccountRow.token_hash == token_digest(token))
    ).first()
    return None if row is None else Account(name=row.name, role=_role(row.role))


def authenticate_password(session: Session, name: str, password: str) -> Account | None:
    """The account ``name`` if ``password`` is its password (for the web login), else None."""
    row = session.get(ReviewAccountRow, name)
    if row is None or row.password_hash is None:
        # Same work as a real check, so timing does not tell which names exist.
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, row.password_hash):
        return None
    return Account(name=row.name, role=_role(row.role))


def _role(value: str) -> Role:
    return "admin" if value == "admin" else "reviewer"


_DUMMY_HASH = f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${'00' * 16}${'00' * 32}"

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ReviewerToken",
    description="A reviewer's API token from `tagstream users add`, as `Bearer <token>`.",
)


async def current_account(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Account:
    """The account of the Bearer token, or ``Unauthorized``."""
    if credentials is None:
        raise Unauthorized("missing token: send Authorization: Bearer <token>")
    account = await run_db(request.app, authenticate_token, credentials.credentials)
    if account is None:
        raise Unauthorized("invalid token")
    return account


async def admin_account(account: Annotated[Account, Depends(current_account)]) -> Account:
    if account.role != "admin":
        raise Forbidden("admins only")
    return account


CurrentReviewer = Annotated[Account, Depends(current_account)]
AdminOnly = Annotated[Account, Depends(admin_account)]
