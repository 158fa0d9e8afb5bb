"""Scraper authentication: Bearer API keys from TAGSTREAM_INGEST_API_KEYS (shared.security)."""

from __future__ import annotations

from shared.security import ApiKeys, Unauthorized, bearer_client

__all__ = ["ApiKeys", "Unauthorized", "require_scraper"]

require_scraper = bearer_client(
    scheme_name="ScraperKey",
    variable="TAGSTREAM_INGEST_API_KEYS",
    description="A scraper API key from TAGSTREAM_INGEST_API_KEYS, as `Bearer <key>`.",
)
