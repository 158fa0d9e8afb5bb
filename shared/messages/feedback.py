"""``feedback.labels``: reviewers' labels and end users' reports, keyed by item id.

Only reviewers' labels make gold; a ``user_report`` is a vote that sends the item to review.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from shared.messages.base import Message


class FeedbackLabel(Message):
    """A human's label for an item: a reviewer's decision or an end user's report (a vote)."""

    schema_version: Literal[1] = 1
    label_id: str = Field(min_length=1, max_length=64, description="Unique id of this label.")
    item_id: str = Field(min_length=1, max_length=64)
    tag: str = Field(description="The label: an approved tag.")
    source: Literal["reviewer", "user_report"]
    labeler: str = Field(
        description="Reviewer account name; for a user report, the reporting client's id "
        "and a digest of the end user's id (one labeler, one vote, per end user)."
    )
    model_version: str | None = Field(None, description="The version whose decision was reviewed.")
    predicted_tag: str | None = Field(None, description="What that version predicted, if known.")
    audit: bool = Field(False, description="The item was auto-accepted and sampled for audit.")
    comment: str | None = Field(None, max_length=2000, description="A reporter's comment.")
    decision_seconds: float | None = Field(
        None, ge=0, description="Reviewer's time from claim to label."
    )
    labeled_at: AwareDatetime
