"""``review.requests``: items routed to human reviewers, keyed by item id.

Schema versions: 1 is what the classifier (and the feedback service's conflict requeue)
sends. Version 2 widens ``reason`` with ``user_report`` — an end user said the item's tag
is wrong — and carries the report (``suggested_tag``, ``comment``, ``report_count``). An
enum widening is not something a rolling deploy survives within one version (a consumer
on the old code would refuse the new value as an invalid field), so a ``user_report``
request is always version 2: a consumer that does not know version 2 dead-letters it as
an unsupported version, and version-1 requests keep their meaning. Deploy order: the
review service (the consumer, which accepts 1 and 2) before the feedback service.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from shared.messages.base import Message

ReviewReason = Literal["low_confidence", "unapproved_tag", "audit", "user_report"]
#: The reasons a version-1 request may carry (all but ``user_report``).
V1_REASONS: frozenset[str] = frozenset({"low_confidence", "unapproved_tag", "audit"})


class ReviewRequest(Message):
    """An item a human should look at, with what the model thought (and what a user said)."""

    SUPPORTED_VERSIONS: ClassVar[frozenset[int]] = frozenset({1, 2})

    schema_version: Literal[1, 2] = Field(
        1, description="2 for a user_report request (see the module docstring), else 1."
    )
    item_id: str
    title: str
    description: str = ""
    url: str | None = None
    reason: ReviewReason = Field(
        description="Why a human should look: low confidence, a tag outside the list, "
        "audit, or (schema_version 2) an end user's report."
    )
    predicted_tag: str | None = Field(
        None, description="The model's top tag when approved; absent when it is not."
    )
    confidence: float = Field(ge=0, le=1)
    probabilities: dict[str, float]
    model_version: str
    received_at: AwareDatetime
    requested_at: AwareDatetime
    suggested_tag: str | None = Field(
        None,
        max_length=200,
        description="user_report: the tag end users suggest (most votes, then the latest).",
    )
    comment: str | None = Field(
        None, max_length=2000, description="user_report: the latest reporter's comment."
    )
    report_count: int | None = Field(
        None, ge=1, description="user_report: how many end users reported the item."
    )

    @model_validator(mode="after")
    def _user_report_is_version_2(self) -> Self:
        if self.reason not in V1_REASONS and self.schema_version < 2:
            raise ValueError(f"reason {self.reason!r} needs schema_version 2")
        return self
