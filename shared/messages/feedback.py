"""``feedback.labels``: gold labels from reviewers and end users, keyed by item id."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from shared.messages.base import Message


class FeedbackLabel(Message):
    """A human's label for an item: a reviewer's decision or an end user's report."""

    schema_version: Literal[1] = 1
    label_id: str = Field(min_length=1, max_length=64, description="Unique id of this label.")
    item_id: str = Field(min_length=1, max_length=64)
    tag: str = Field(description="The label: an approved tag.")
    source: Literal["reviewer", "user_report"]
    labeler: str = Field(description="Reviewer account name, or the reporting client's id.")
    model_version: str | None = Field(None, description="The version whose decision was reviewed.")
    predicted_tag: str | None = Field(None, description="What that version predicted, if known.")
    audit: bool = Field(False, description="The item was auto-accepted and sampled for audit.")
    comment: str | None = Field(None, max_length=2000, description="A reporter's comment.")
    decision_seconds: float | None = Field(
        None, ge=0, description="Reviewer's time from claim to label."
    )
    labeled_at: AwareDatetime
