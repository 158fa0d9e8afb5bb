"""Account lifecycle on both databases: disable, remove, password reset and rehash, token
rotation, revocation and expiry; and the login throttle."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from services.review import accounts
from services.review.auth import authenticate_password, authenticate_token, check_token
from services.review.passwords import hash_password, needs_rehash, verify_password
from services.review.service import claim_next
from services.review.tables import ReviewAccountRow, ReviewItemRow
from services.review.throttle import LoginThrottle
from shared.security import REVIEW_TOKEN_PREFIX
from tests.services.review.conftest import T0, Enqueue, request

PASSWORD = "correct horse battery"


def _legacy_scrypt(password: str) -> str:
    """A hash as the releases before argon2id stored it."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${2**14}$8$1${salt.hex()}${digest.hex()}"


def test_passwords_are_argon2id_and_legacy_scrypt_still_verifies() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert verify_password(PASSWORD, stored)
    assert not verify_password("wrong horse battery", stored)
    assert not needs_rehash(stored)
    legacy = _legacy_scrypt(PASSWORD)
    assert verify_password(PASSWORD, legacy)
    assert not verify_password("wrong horse battery", legacy)
    assert needs_rehash(legacy)
    assert not verify_password(PASSWORD, "garbage")


def test_a_legacy_hash_is_replaced_by_argon2id_at_the_next_login(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        accounts.create_account(session, "ann", "reviewer", T0)
        session.get_one(ReviewAccountRow, "ann").password_hash = _legacy_scrypt(PASSWORD)
    with sessions.begin() as session:
        assert authenticate_password(session, "ann", "wrong horse battery") is None
    with sessions.begin() as session:
        assert session.get_one(ReviewAccountRow, "ann").password_hash.startswith("scrypt$")
        assert authenticate_password(session, "ann", PASSWORD) is not None
    with sessions.begin() as session:
        stored = session.get_one(ReviewAccountRow, "ann").password_hash
        assert stored is not None
        assert stored.startswith("$argon2id$")
        assert authenticate_password(session, "ann", PASSWORD) is not None


def test_disable_refuses_token_and_password_and_releases_claims(
    sessions: sessionmaker[Session], enqueue: Enqueue
) -> None:
    enqueue(request("a"))
    with sessions.begin() as session:
        _, token = accounts.create_account(session, "ann", "reviewer", T0, PASSWORD)
        assert claim_next(session, "ann", T0) is not None
    with sessions.begin() as session:
        accounts.disable_account(session, "ann", T0)
    with sessions.begin() as session:
        assert check_token(session, token, T0) == "account disabled"
        assert authenticate_password(session, "ann", PASSWORD) is None
        assert session.get_one(ReviewItemRow, "a").claimed_by is None
        accounts.enable_account(session, "ann")
    with sessions.begin() as session:
        assert authenticate_token(session, token, T0) is not None
        assert authenticate_password(session, "ann", PASSWORD) is not None


def test_remove_deletes_the_account_and_releases_its_claims(
    sessions: sessionmaker[Session], enqueue: Enqueue
) -> None:
    enqueue(request("a"))
    with sessions.begin() as session:
        _, token = accounts.create_account(session, "ann", "reviewer", T0, PASSWORD)
        claim_next(session, "ann", T0)
    with sessions.begin() as session:
        accounts.remove_account(session, "ann")
    with sessions.begin() as session:
        assert session.get(ReviewAccountRow, "ann") is None
        assert check_token(session, token, T0) == "invalid token"
        assert session.get_one(ReviewItemRow, "a").claimed_by is None
        with pytest.raises(accounts.UnknownAccount):
            accounts.remove_account(session, "ann")


def test_reset_password_replaces_the_old_one(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        accounts.create_account(session, "ann", "reviewer", T0, PASSWORD)
        with pytest.raises(accounts.WeakPassword):
            accounts.reset_password(session, "ann", "short")
        accounts.reset_password(session, "ann", "a new long password")
    with sessions.begin() as session:
        assert authenticate_password(session, "ann", PASSWORD) is None
        assert authenticate_password(session, "ann", "a new long password") is not None


def test_rotate_and_revoke_tokens(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _, old = accounts.create_account(session, "ann", "reviewer", T0)
        new = accounts.rotate_token(session, "ann", T0)
    with sessions.begin() as session:
        assert check_token(session, old, T0) == "invalid token"
        assert authenticate_token(session, new, T0) is not None
        accounts.revoke_token(session, "ann", T0)
    with sessions.begin() as session:
        assert check_token(session, new, T0) == "token revoked"
        newest = accounts.rotate_token(session, "ann", T0)
    with sessions.begin() as session:
        assert authenticate_token(session, newest, T0) is not None


def test_tokens_carry_the_review_prefix_and_unprefixed_ones_still_work(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        _, token = accounts.create_account(session, "ann", "reviewer", T0)
        rotated = accounts.rotate_token(session, "ann", T0)
        accounts.create_account(session, "bob", "admin", T0)
        # a token issued before the prefix: stored, like every token, as its digest only
        legacy = secrets.token_urlsafe(accounts.TOKEN_BYTES)
        session.get_one(ReviewAccountRow, "bob").token_hash = accounts.token_digest(legacy)
    assert token.startswith(REVIEW_TOKEN_PREFIX)
    assert rotated.startswith(REVIEW_TOKEN_PREFIX)
    assert len(token) == len(REVIEW_TOKEN_PREFIX) + 43  # 32 random bytes, base64url
    with sessions.begin() as session:
        assert authenticate_token(session, rotated, T0) is not None
        found = authenticate_token(session, legacy, T0)
        assert found is not None
        assert found.name == "bob"


def test_tokens_expire_after_the_configured_age(sessions: sessionmaker[Session]) -> None:
    day = timedelta(days=1)
    with sessions.begin() as session:
        _, token = accounts.create_account(session, "ann", "reviewer", T0)
    with sessions.begin() as session:
        assert authenticate_token(session, token, T0 + day - timedelta(seconds=1), day)
        assert check_token(session, token, T0 + day, day) == "token expired"
        assert authenticate_token(session, token, T0 + 10 * day) is not None  # no expiry set
        fresh = accounts.rotate_token(session, "ann", T0 + day)
    with sessions.begin() as session:
        assert authenticate_token(session, fresh, T0 + day + timedelta(hours=23), day)


def test_login_throttle_per_account_and_per_address() -> None:
    window = timedelta(minutes=5)
    throttle = LoginThrottle(max_per_account=3, max_per_address=5, window=window)
    for _ in range(3):
        assert throttle.retry_after("ann", "10.0.0.1", T0) is None
        throttle.failed("ann", "10.0.0.1", T0)
    # ann is locked out from anywhere; another account from that address is not yet
    assert throttle.retry_after("ann", "10.0.0.9", T0) == 300
    assert throttle.retry_after("bob", "10.0.0.1", T0) is None
    throttle.failed("bob", "10.0.0.1", T0)
    throttle.failed("cyd", "10.0.0.1", T0)
    assert throttle.retry_after("dee", "10.0.0.1", T0 + timedelta(seconds=60)) == 240
    assert throttle.retry_after("dee", "10.0.0.2", T0) is None
    # the window passes: both are free again
    assert throttle.retry_after("ann", "10.0.0.1", T0 + window) is None
    # success clears the account's failures, not the address's
    throttle.failed("eve", "10.0.0.3", T0)
    throttle.failed("eve", "10.0.0.3", T0)
    throttle.succeeded("eve")
    throttle.failed("eve", "10.0.0.3", T0)
    assert throttle.retry_after("eve", "10.0.0.4", T0) is None
