"""Request and response bodies of the ingest API (kept apart from tables and messages)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.http.errors import FieldErrorOut

ItemStatus = Literal["accepted", "duplicate"]


class ItemIn(BaseModel):
    """One content item as a scraper sends it. Unknown fields are refused.

    Limits are checked after normalisation (NFKC, control characters removed, white
    space collapsed): title up to ``TAGSTREAM_MAX_TITLE_CHARS`` (300) and not empty,
    description up to ``TAGSTREAM_MAX_DESCRIPTION_CHARS`` (5000), url up to 2048 with an
    http/https scheme, source and external_id up to 200.
    """

    model_config = ConfigDict(extra="forbid")

    title: str = Field(description="Title of the content; required, not blank.")
    description: str | None = Field(None, description="Body text or summary.")
    url: str | None = Field(None, description="Where the content lives (http or https).")
    source: str | None = Field(None, description="Which scraper or feed sent it.")
    created_at: datetime | None = Field(
        None, description="When the content was published (ISO 8601; naive means UTC)."
    )
    external_id: str | None = Field(
        None,
        description="The client's own id; a retry with the same (source, external_id) "
        "gets the same item id.",
    )


class ItemResult(BaseModel):
    id: str = Field(description="Item id (the key on content.raw).")
    status: ItemStatus = Field(
        description="accepted: on content.raw; duplicate: the same content or URL was "
        "accepted before under ``id``."
    )


class BatchIn(BaseModel):
    """Up to ``TAGSTREAM_INGEST_MAX_BATCH_ITEMS`` items; each is validated on its own."""

    model_config = ConfigDict(extra="forbid")

    items: list[Any] = Field(
        description="Items, each as in POST /v1/items.",
        json_schema_extra={"items": {"$ref": "#/components/schemas/ItemIn"}},
    )


class BatchItemResult(BaseModel):
    index: int = Field(description="Position of the item in the request.")
    id: str | None = Field(None, description="Item id, unless rejected.")
    status: Literal["accepted", "duplicate", "rejected"]
    errors: list[FieldErrorOut] | None = Field(None, description="Why, when rejected.")


class BatchResult(BaseModel):
    items: list[BatchItemResult] = Field(description="One result per item, in request order.")
