"""Scraper authentication: Bearer API keys from TAGSTREAM_INGEST_API_KEYS (shared.security)."""

from __future__ import annotations

from shared.security import bearer_client

require_scraper = bearer_client(
    scheme_name="ScraperKey",
    variable="TAGSTREAM_INGEST_API_KEYS",
    description="A scraper API key from TAGSTREAM_INGEST_API_KEYS, as `Bearer <key>`.",
    api="the ingest API",
)
