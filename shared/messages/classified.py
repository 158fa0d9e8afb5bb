"""``content.classified``: the final decision on every item, keyed by item id."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from shared.messages.base import Message

NEEDS_REVIEW = "needs_review"


class Classification(Message):
    """What the model decided. ``tag`` is an approved tag, or ``needs_review``."""

    schema_version: Literal[1] = 1
    item_id: str
    tag: str = Field(description="The approved tag, or 'needs_review' when routed to humans.")
    route: Literal["auto", "review"]
    confidence: float = Field(ge=0, le=1, description="Probability of the model's top tag.")
    predicted_tag: str | None = Field(
        None,
        description="The model's top tag when it is approved (also when routed to review); "
        "absent when the top tag is outside the approved list.",
    )
    probabilities: dict[str, float] = Field(description="Probability of every approved tag.")
    model_version: str
    role: Literal["stable", "canary"] = "stable"
    latency_ms: float = Field(ge=0, description="From ingest acceptance to this decision.")
    decided_at: AwareDatetime
