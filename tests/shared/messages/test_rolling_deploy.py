"""A rolling deploy: a consumer on the old code reads what a newer producer writes.

The old code is simulated by a message class without the field the new one adds, top
level and nested; the bytes come from the new class's ``encode``, as on the topic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import pytest
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from shared.messages import Message, MessageError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class OldScore(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: str
    probability: float


class NewScore(OldScore):
    calibrated: bool | None = None


class OldDecision(Message):
    """The contract as the consumer still running the old code knows it."""

    schema_version: Literal[1] = 1
    item_id: str
    scores: list[OldScore]
    best: OldScore
    decided_at: AwareDatetime


class NewDecision(Message):
    """The same contract after a producer added optional fields, at both depths."""

    schema_version: Literal[1] = 1
    item_id: str
    scores: list[NewScore]
    best: NewScore
    decided_at: AwareDatetime
    explanation: str | None = None
    reviewed: bool = False


def newer() -> NewDecision:
    score = NewScore(tag="mlops", probability=0.9, calibrated=True)
    return NewDecision(
        item_id="a1",
        scores=[score],
        best=score,
        decided_at=NOW,
        explanation="top words",
        reviewed=True,
    )


def test_an_old_consumer_decodes_a_message_with_added_optional_fields() -> None:
    raw = newer().encode()
    assert b"explanation" in raw
    assert b"calibrated" in raw

    old = OldDecision.decode(raw)

    assert old == OldDecision(
        item_id="a1",
        scores=[OldScore(tag="mlops", probability=0.9)],
        best=OldScore(tag="mlops", probability=0.9),
        decided_at=NOW,
    )


def test_a_new_consumer_decodes_an_old_producers_message_with_the_defaults() -> None:
    score = OldScore(tag="mlops", probability=0.9)
    raw = OldDecision(item_id="a1", scores=[score], best=score, decided_at=NOW).encode()

    new = NewDecision.decode(raw)

    assert (new.explanation, new.reviewed, new.best.calibrated) == (None, False, None)


def test_the_old_producer_still_refuses_the_new_fields() -> None:
    with pytest.raises(ValidationError, match="explanation"):
        OldDecision.model_validate(newer().model_dump())
    with pytest.raises(ValidationError, match="calibrated"):
        OldScore(tag="mlops", probability=0.9, **{"calibrated": True})


def test_an_unknown_schema_version_is_still_refused() -> None:
    raw = newer().encode().replace(b'"schema_version":1', b'"schema_version":2')
    assert b'"schema_version":2' in raw

    with pytest.raises(MessageError, match="unsupported schema_version 2"):
        OldDecision.decode(raw)


def test_a_known_field_that_is_wrong_is_still_refused() -> None:
    raw = newer().encode().replace(b'"probability":0.9', b'"probability":"high"')

    with pytest.raises(MessageError, match=r"invalid scores\.0\.probability"):
        OldDecision.decode(raw)
