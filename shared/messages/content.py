"""``content.raw``: items accepted by ingest, keyed by item id."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from shared.messages.base import Message


class ContentItem(Message):
    """An accepted item, already normalised and screened for duplicates by ingest."""

    schema_version: Literal[1] = 1
    item_id: str = Field(min_length=1, max_length=64, description="Id assigned by ingest.")
    title: str = Field(min_length=1, description="Normalised title.")
    description: str = Field("", description="Normalised description, may be empty.")
    url: str | None = Field(None, description="Canonical http(s) URL of the content.")
    source: str | None = Field(None, description="Which scraper or feed sent it.")
    external_id: str | None = Field(None, description="The client's own id, if it sent one.")
    created_at: datetime | None = Field(None, description="When the content was published.")
    received_at: AwareDatetime = Field(description="When ingest accepted the item.")
