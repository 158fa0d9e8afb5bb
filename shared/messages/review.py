"""``review.requests``: items routed to human reviewers, keyed by item id."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from shared.messages.base import Message


class ReviewRequest(Message):
    """An item the model was unsure of, with what the model thought."""

    schema_version: Literal[1] = 1
    item_id: str
    title: str
    description: str = ""
    url: str | None = None
    reason: Literal["low_confidence", "unapproved_tag", "audit"] = Field(
        description="Why a human should look: low confidence, a tag outside the list, or audit."
    )
    predicted_tag: str | None = Field(
        None, description="The model's top tag when approved; absent when it is not."
    )
    confidence: float = Field(ge=0, le=1)
    probabilities: dict[str, float]
    model_version: str
    received_at: AwareDatetime
    requested_at: AwareDatetime
