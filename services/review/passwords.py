"""Review passwords: argon2id hashes, and the scrypt hashes of earlier releases still read.

New hashes are argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane), so a
login costs tens of milliseconds, not seconds, on a two-core machine. A password stored
as scrypt (or as argon2 with weaker parameters) still verifies, and ``needs_rehash`` tells
the login to store it again as argon2id: hashes move forward one login at a time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

#: argon2id: 19 MiB, t=2, p=1 (OWASP Password Storage Cheat Sheet, first option)
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
_LEGACY_SCHEME = "scrypt"
#: the shortest password an account may have (CLI and admin page)
MIN_PASSWORD_CHARS = 8


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (PHC string, with its own salt and parameters)."""
    return _HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (argon2 or a legacy scrypt hash)."""
    if stored.startswith(f"{_LEGACY_SCHEME}$"):
        return _verify_scrypt(password, stored)
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True for a legacy scrypt hash or argon2 with other parameters than ours."""
    if stored.startswith(f"{_LEGACY_SCHEME}$"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def burn_time(password: str) -> None:
    """The work of one real check, for an unknown account: timing does not tell names."""
    verify_password(password, _dummy_hash())


@cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def _verify_scrypt(password: str, stored: str) -> bool:
    # Format of earlier releases: scrypt$N$r$p$salt_hex$digest_hex (dklen 32).
    try:
        _, n, r, p, salt, expected = stored.split("$")
        digest = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)
