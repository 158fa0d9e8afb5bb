"""The review domain's models: what service.py returns and the JSON API sends."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.messages.review import ReviewReason

Role = Literal["reviewer", "admin"]


class Account(BaseModel):
    """An authenticated reviewer or admin."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role


class ClaimedItem(BaseModel):
    """The item a reviewer holds, with what the model thought and when the claim lapses."""

    item_id: str
    title: str
    description: str
    url: str | None
    probabilities: dict[str, float]
    predicted_tag: str | None
    confidence: float
    model_version: str
    audit: bool
    reason: ReviewReason = Field(
        description="Why it is queued: low_confidence, unapproved_tag, audit or user_report."
    )
    suggested_tag: str | None = Field(
        None, description="user_report: the tag end users suggest (most votes, then latest)."
    )
    report_comment: str | None = Field(None, description="user_report: the latest comment.")
    report_count: int | None = Field(
        None, description="user_report: how many end users reported the item."
    )
    lease_expires_at: AwareDatetime
    queue_depth: int = Field(description="Items still waiting for a label, this one included.")


class StoredLabel(BaseModel):
    """A decision as stored (and queued for feedback.labels)."""

    label_id: str
    item_id: str
    tag: str
    reviewer: str
    decided_at: AwareDatetime
    decision_seconds: float


class Progress(BaseModel):
    """A reviewer's progress: labels since midnight UTC, and what is left."""

    labeled_today: int
    queue_depth: int


class ReviewStats(BaseModel):
    """The admin's view of the queue and the reviewers."""

    queue_depth: int
    oldest_pending_age_seconds: float | None = Field(
        description="Age of the oldest waiting item since it was received; null when empty."
    )
    labels_per_reviewer: dict[str, int] = Field(description="Labels in force (undos excluded).")
    doubly_labeled_items: int = Field(description="Items with labels from two or more reviewers.")
    agreement: float | None = Field(
        description="Share of doubly-labeled items whose labels all match; null when none."
    )


class LabelIn(BaseModel):
    """A label: the tag alone. Who labels is the token's account, never a body field, so
    an unknown field (``reviewer_id``, ``model_version``...) is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")

    tag: str = Field(min_length=1, max_length=200, description="One of the approved tags.")


class LabelOut(BaseModel):
    label_id: str
    item_id: str
    tag: str


class SkipOut(BaseModel):
    item_id: str
    skipped: bool = True
