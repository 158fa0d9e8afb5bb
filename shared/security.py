"""API keys for machine clients (scrapers, report senders): hashed, constant-time checked.

Keys come from settings and are kept only as sha256 digests; a presented key is hashed
and compared against every digest with ``hmac.compare_digest`` and no early exit, so
timing reveals neither a key nor which one matched.

Review accounts' API tokens start with ``REVIEW_TOKEN_PREFIX`` (as GitHub's ``ghp_``), so
a service that knows no review accounts (they live in the review service's tables) can
still tell a reviewer's token from a made-up key: it answers 403 ``Forbidden``, not 401,
to a bearer with that prefix that is not one of its own keys. The prefix is all it
checks: it cannot tell a real review token from a forged one, and needs not, since either
is refused; the answer depends on the prefix only, so it reveals nothing about accounts.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable, Sequence

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

#: Shortest API key production accepts; shorter ones look like placeholders.
MIN_PRODUCTION_KEY_CHARS = 16
#: How every review account's API token starts (``tsr_`` + ``secrets.token_urlsafe``); also
#: a pattern for secret scanners. Tokens issued before it have no prefix and still work in
#: the review service.
REVIEW_TOKEN_PREFIX = "tsr_"  # a public prefix, not a secret  # nosec B105


class Unauthorized(Exception):
    """Missing or wrong credentials; answered 401 with ``WWW-Authenticate: Bearer``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(Exception):
    """A credential of the wrong kind (a review token at a machine-key API); answered 403."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_review_token(presented: str) -> bool:
    return presented.startswith(REVIEW_TOKEN_PREFIX)


class ApiKeys:
    """The accepted keys, as digests."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = tuple(hashlib.sha256(key.encode()).digest() for key in keys)

    @classmethod
    def from_secrets(cls, keys: Iterable[SecretStr]) -> ApiKeys:
        return cls(key.get_secret_value() for key in keys)

    @property
    def configured(self) -> bool:
        return bool(self._digests)

    def identify(self, presented: str) -> str | None:
        """The client id (hex digest of its key) for a valid key, else None."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found: bytes | None = None
        for candidate in self._digests:
            if hmac.compare_digest(digest, candidate):
                found = candidate
        return found.hex() if found is not None else None


def check_production_keys(keys: Sequence[SecretStr], variable: str, what: str) -> None:
    """Refuse missing or placeholder-short keys (called by production settings)."""
    if not keys:
        raise ValueError(f"production needs {variable} ({what})")
    if any(len(k.get_secret_value()) < MIN_PRODUCTION_KEY_CHARS for k in keys):
        raise ValueError(
            f"{variable}: every key needs at least {MIN_PRODUCTION_KEY_CHARS} characters "
            "in production"
        )


def bearer_client(
    *, scheme_name: str, variable: str, description: str, api: str = "this API"
) -> Callable[..., Awaitable[str]]:
    """A FastAPI dependency: the client id of the request's Bearer key (``app.state.api_keys``),
    else ``Forbidden`` for a review token (``REVIEW_TOKEN_PREFIX``), else ``Unauthorized``.
    ``variable`` names the setting in the errors; ``api`` names the API in the 403."""
    scheme = HTTPBearer(auto_error=False, scheme_name=scheme_name, description=description)

    # Depends(scheme) as a default, not inside Annotated: annotations are strings here
    # (postponed evaluation) and FastAPI could not resolve the closure variable from them.
    async def client_id(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(scheme),  # noqa: B008
    ) -> str:
        keys: ApiKeys = request.app.state.api_keys
        if not keys.configured:
            raise Unauthorized(f"no API keys are configured on this server: set {variable}")
        if credentials is None:
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        client = keys.identify(credentials.credentials)
        if client is not None:
            return client
        if is_review_token(credentials.credentials):
            raise Forbidden(f"a reviewer token cannot call {api}; use a key from {variable}")
        raise Unauthorized("invalid API key")

    return client_id
