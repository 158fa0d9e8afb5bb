"""``content.classified``: the latest decision on every item, keyed by item id.

A decision is the model's (``route`` ``auto`` or ``review``, schema_version 1) or a
person's (``route`` ``human``, schema_version 2): a reviewer's label of an item the
model left to review, an undone label's correction, or a reviewer's verdict on an
audited auto-accepted item. Downstream keeps the latest decision per item id.

Human decisions are schema_version 2 because ``human`` widens the route enum: a
consumer that knows only version 1 dead-letters them instead of misreading a person's
tag as a model's prediction. Model decisions stay version 1, so such a consumer reads
them as before during a rolling deploy.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, Field, model_validator

from shared.messages.base import Message

NEEDS_REVIEW = "needs_review"
HUMAN = "human"
"""The route of a reviewer's decision."""
HUMAN_DECISION_VERSION = 2
"""The schema_version a human decision carries (version 1 does not know the route)."""


class Classification(Message):
    """A decision on an item. ``tag`` is an approved tag, or ``needs_review``.

    For a model decision, the model's answer; for a human decision (``route`` ``human``),
    ``tag`` is the reviewer's label and the model fields describe the guess that was
    reviewed (``model_version``'s ``predicted_tag``, ``confidence``, ``probabilities``).
    """

    SUPPORTED_VERSIONS: ClassVar[frozenset[int]] = frozenset({1, HUMAN_DECISION_VERSION})

    schema_version: Literal[1, 2] = 1
    item_id: str
    tag: str = Field(
        description="The approved tag, or 'needs_review' when routed to humans; on a human "
        "decision, the reviewer's label."
    )
    route: Literal["auto", "review", "human"] = Field(
        description="auto: the model decided alone; review: left to humans; human: a "
        "reviewer's decision (schema_version 2)."
    )
    confidence: float = Field(ge=0, le=1, description="Probability of the model's top tag.")
    predicted_tag: str | None = Field(
        None,
        description="The model's top tag when it is approved (also when routed to review); "
        "absent when the top tag is outside the approved list.",
    )
    probabilities: dict[str, float] = Field(description="Probability of every approved tag.")
    model_version: str = Field(
        description="The version that decided; on a human decision, the one whose guess "
        "was reviewed."
    )
    role: Literal["stable", "canary"] | None = Field(
        "stable",
        description="The serving role of model_version; absent on a human decision (the "
        "review queue does not know it).",
    )
    stage: int | None = Field(
        None,
        ge=1,
        le=2,
        description="Which stage of the model's cascade decided: 1 (the fast model, sure "
        "of itself) or 2 (the sentence-encoder model, for what stage 1 was unsure of); "
        "absent on a human decision and from versions before the cascade.",
    )
    latency_ms: float = Field(
        ge=0,
        description="From ingest acceptance to this decision (on a human decision, to the "
        "reviewer's label).",
    )
    decided_at: AwareDatetime
    label_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The reviewer's label this human decision comes from; consumers dedupe "
        "on it (a relay may send a decision twice). Human decisions only.",
    )

    @property
    def is_human(self) -> bool:
        """A person's decision, not a model's prediction."""
        return self.route == HUMAN

    @model_validator(mode="before")
    @classmethod
    def _human_decisions_have_no_role(cls, data: Any) -> Any:
        # The role default is a model decision's; a human decision's absent role is None.
        if isinstance(data, dict) and data.get("route") == HUMAN and "role" not in data:
            return {**data, "role": None}
        return data

    @model_validator(mode="after")
    def _human_decisions_are_version_2(self) -> Classification:
        if self.is_human:
            if self.schema_version != HUMAN_DECISION_VERSION:
                raise ValueError(f"a human decision is schema_version {HUMAN_DECISION_VERSION}")
            if self.label_id is None:
                raise ValueError("a human decision names its label_id")
        else:
            if self.label_id is not None:
                raise ValueError("label_id belongs to human decisions only")
            if self.role is None:
                raise ValueError("a model decision names its role")
        return self
