"""Scraper authentication: Bearer API keys from settings, kept only as sha256 digests."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.ingest.settings import IngestSettings

NO_KEYS_CONFIGURED = (
    "no API keys are configured on this server: set TAGSTREAM_INGEST_API_KEYS "
    "(comma-separated scraper keys)"
)


class Unauthorized(Exception):
    """Missing or wrong credentials; answered 401 with ``WWW-Authenticate: Bearer``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ApiKeys:
    """The accepted keys as digests; a presented key is hashed and compared in constant
    time against every digest (no early exit), so timing reveals neither key nor match."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = tuple(hashlib.sha256(key.encode()).digest() for key in keys)

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> ApiKeys:
        return cls(key.get_secret_value() for key in settings.ingest_api_keys)

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


bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ScraperKey",
    description="A scraper API key from TAGSTREAM_INGEST_API_KEYS, as `Bearer <key>`.",
)


async def require_scraper(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str:
    """The authenticated client's id, or ``Unauthorized``."""
    keys: ApiKeys = request.app.state.api_keys
    if not keys.configured:
        raise Unauthorized(NO_KEYS_CONFIGURED)
    if credentials is None:
        raise Unauthorized("missing API key: send Authorization: Bearer <key>")
    client = keys.identify(credentials.credentials)
    if client is None:
        raise Unauthorized("invalid API key")
    return client
