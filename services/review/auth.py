"""Who is calling: API tokens (JSON API) and passwords (web login) checked against the
accounts (accounts.py).

``CurrentReviewer`` (any account) and ``AdminOnly`` are the FastAPI dependencies of the
JSON API: ``Authorization: Bearer <token>``; 401 (``shared.security.Unauthorized``, the
one every service answers alike) for a missing, wrong, expired or revoked token or a
disabled account, 403 for a reviewer on an admin endpoint.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.review.accounts import (
    AccountExists,
    create_account,
    list_accounts,
    role_of,
    token_digest,
)
from services.review.database import run_db
from services.review.passwords import burn_time, hash_password, needs_rehash, verify_password
from services.review.schemas import Account
from services.review.tables import ReviewAccountRow
from shared.security import Unauthorized

__all__ = [
    "AccountExists",
    "AdminOnly",
    "CurrentReviewer",
    "Forbidden",
    "authenticate_password",
    "authenticate_token",
    "check_token",
    "create_account",
    "list_accounts",
]


class Forbidden(Exception):
    """Authenticated, but the role does not allow this (HTTP 403)."""


def check_token(
    session: Session, token: str, now: datetime, max_age: timedelta | None = None
) -> Account | str:
    """The account whose API token is ``token``, else why it is refused.

    Found by digest (no comparison of secrets that timing could reveal). Refused: unknown
    token, revoked token, token older than ``max_age``, disabled account.
    """
    row = session.scalars(
        select(ReviewAccountRow).where(ReviewAccountRow.token_hash == token_digest(token))
    ).first()
    if row is None:
        return "invalid token"
    if row.disabled_at is not None:
        return "account disabled"
    if row.token_revoked_at is not None:
        return "token revoked"
    issued = row.token_issued_at or row.created_at
    if max_age is not None and now >= issued + max_age:
        return "token expired"
    return Account(name=row.name, role=role_of(row))


def authenticate_token(
    session: Session, token: str, now: datetime | None = None, max_age: timedelta | None = None
) -> Account | None:
    """The account whose API token is ``token`` and still valid, else None."""
    found = check_token(session, token, now or datetime.now(UTC), max_age)
    return found if isinstance(found, Account) else None


def authenticate_password(session: Session, name: str, password: str) -> Account | None:
    """The account ``name`` if ``password`` is its password (for the web login), else None.

    A hash of an older scheme (scrypt) or weaker parameters is replaced by an argon2id
    one on the first successful login.
    """
    row = session.get(ReviewAccountRow, name)
    if row is None or row.password_hash is None:
        burn_time(password)  # same work as a real check: timing does not tell names
        return None
    if not verify_password(password, row.password_hash) or row.disabled_at is not None:
        return None
    if needs_rehash(row.password_hash):
        row.password_hash = hash_password(password)
    return Account(name=row.name, role=role_of(row))


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
    seconds = request.app.state.settings.review_token_max_age_seconds
    max_age = None if seconds is None else timedelta(seconds=seconds)
    found = await run_db(
        request.app, check_token, credentials.credentials, datetime.now(UTC), max_age
    )
    if not isinstance(found, Account):
        raise Unauthorized(found)
    return found


async def admin_account(account: Annotated[Account, Depends(current_account)]) -> Account:
    if account.role != "admin":
        raise Forbidden("admins only")
    return account


CurrentReviewer = Annotated[Account, Depends(current_account)]
AdminOnly = Annotated[Account, Depends(admin_account)]
