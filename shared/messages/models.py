"""``models.events``: what happened to a model's versions, keyed by model name.

Events are notifications: each carries the traffic split after the change, but the
registry stays the truth, so a consumer that missed one re-reads the registry and loses
nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from shared.messages.base import Message

ModelEventKind = Literal[
    "candidate_registered",
    "rollout_started",
    "canary_weight_changed",
    "rollout_paused",
    "rollout_resumed",
    "promoted",
    "rolled_back",
]


class ModelEvent(Message):
    """A registry or rollout event about one version of a model."""

    schema_version: Literal[1] = 1
    event: ModelEventKind
    model_name: str
    version: str = Field(description="The version the event is about.")
    stable_version: str | None = Field(None, description="Stable version after the event.")
    canary_version: str | None = Field(None, description="Canary version after the event.")
    canary_weight: float = Field(0.0, ge=0, le=1, description="Share the canary decides.")
    shadow: bool = Field(False, description="The canary scores every item, decides none.")
    reason: str = Field("", max_length=2000, description="Why, in a sentence.")
    at: AwareDatetime
