"""Review accounts and their lifecycle: create, list, disable, enable, remove, reset a
password, rotate or revoke the API token.

The CLI (``tagstream users``) and the admin page call these; each runs in the caller's
unit of work. A token is shown once (returned by ``create_account``/``rotate_token``) and
stored only as its sha256 digest; passwords only as argon2id hashes (passwords.py).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.review.passwords import MIN_PASSWORD_CHARS, hash_password
from services.review.schemas import Account, Role
from services.review.tables import ReviewAccountRow, ReviewItemRow
from shared.security import REVIEW_TOKEN_PREFIX

TOKEN_BYTES = 32
MAX_NAME_CHARS = 100


class AccountExists(ValueError):
    """An account of that name exists already."""


class UnknownAccount(LookupError):
    """No account of that name."""


class WeakPassword(ValueError):
    """A password shorter than ``MIN_PASSWORD_CHARS``."""


@dataclass(frozen=True)
class AccountInfo:
    """An account as the admin sees it (never its secrets)."""

    name: str
    role: Role
    created_at: datetime
    disabled: bool
    has_password: bool
    token_issued_at: datetime | None
    token_revoked: bool


def new_token() -> str:
    """A fresh API token: the review prefix (other services answer it 403, scanners can
    find it) and 32 random bytes."""
    return REVIEW_TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def role_of(row: ReviewAccountRow) -> Role:
    return "admin" if row.role == "admin" else "reviewer"


def create_account(
    session: Session, name: str, role: Role, now: datetime, password: str | None = None
) -> tuple[Account, str]:
    """Create an account; returns it with its API token (shown once, stored only hashed)."""
    if session.get(ReviewAccountRow, name) is not None:
        raise AccountExists(f"account {name!r} exists already")
    token = new_token()
    session.add(
        ReviewAccountRow(
            name=name,
            role=role,
            token_hash=token_digest(token),
            password_hash=_checked_hash(password) if password else None,
            created_at=now,
            token_issued_at=now,
        )
    )
    session.flush()
    return Account(name=name, role=role), token


def list_accounts(session: Session) -> list[tuple[Account, datetime]]:
    rows = session.scalars(select(ReviewAccountRow).order_by(ReviewAccountRow.name))
    return [(Account(name=r.name, role=role_of(r)), r.created_at) for r in rows]


def describe_accounts(session: Session) -> list[AccountInfo]:
    rows = session.scalars(select(ReviewAccountRow).order_by(ReviewAccountRow.name))
    return [
        AccountInfo(
            name=r.name,
            role=role_of(r),
            created_at=r.created_at,
            disabled=r.disabled_at is not None,
            has_password=r.password_hash is not None,
            token_issued_at=r.token_issued_at,
            token_revoked=r.token_revoked_at is not None,
        )
        for r in rows
    ]


def disable_account(session: Session, name: str, now: datetime) -> None:
    """Neither token nor password lets the account in; the items it holds are released."""
    row = _row(session, name)
    if row.disabled_at is None:
        row.disabled_at = now
    _release_claims(session, name)


def enable_account(session: Session, name: str) -> None:
    _row(session, name).disabled_at = None


def remove_account(session: Session, name: str) -> None:
    """Delete the account; its labels stay (they name it), the items it holds are released."""
    row = _row(session, name)
    _release_claims(session, name)
    session.delete(row)
    session.flush()


def reset_password(session: Session, name: str, password: str) -> None:
    _row(session, name).password_hash = _checked_hash(password)


def rotate_token(session: Session, name: str, now: datetime) -> str:
    """A new API token for the account (shown once); the old one stops working at once."""
    row = _row(session, name)
    token = new_token()
    row.token_hash = token_digest(token)
    row.token_issued_at = now
    row.token_revoked_at = None
    return token


def revoke_token(session: Session, name: str, now: datetime) -> None:
    """The account's API token stops working; ``rotate_token`` issues a new one."""
    row = _row(session, name)
    if row.token_revoked_at is None:
        row.token_revoked_at = now


def _row(session: Session, name: str) -> ReviewAccountRow:
    row = session.get(ReviewAccountRow, name)
    if row is None:
        raise UnknownAccount(f"no account {name!r}")
    return row


def _checked_hash(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return hash_password(password)


def _release_claims(session: Session, name: str) -> None:
    session.execute(
        update(ReviewItemRow)
        .where(ReviewItemRow.claimed_by == name, ReviewItemRow.state == "pending")
        .values(claimed_by=None, claimed_at=None, lease_expires_at=None)
    )
