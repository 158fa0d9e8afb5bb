"""API keys for machine clients (scrapers, report senders): hashed, constant-time checked.

Keys come from settings and are kept only as sha256 digests; a presented key is hashed
and compared against every digest with ``hmac.compare_digest`` and no early exit, so
timing reveals neither a key nor which one matched.
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


class Unauthorized(Exception):
    """Missing or wrong credentials; answered 401 with ``WWW-Authenticate: Bearer``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    *, scheme_name: str, variable: str, description: str
) -> Callable[..., Awaitable[str]]:
    """A FastAPI dependency: the client id of the request's Bearer key (``app.state.api_keys``),
    or ``Unauthorized``. ``variable`` names the setting in the error when no key is set."""
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
        if client is None:
            raise Unauthorized("invalid API key")
        return client

    return client_id
