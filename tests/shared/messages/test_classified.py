"""content.classified: model decisions stay schema_version 1, human decisions are version 2.

A consumer that knows only version 1 (the contract before route "human") dead-letters a
human decision instead of reading a person's tag as a model's prediction, and still
reads model decisions during a rolling deploy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import pytest
from pydantic import AwareDatetime, ValidationError

from shared.messages import HUMAN, Classification, Message, MessageError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def model_decision(**changes: Any) -> Classification:
    fields: dict[str, Any] = {
        "item_id": "a1",
        "tag": "mlops",
        "route": "auto",
        "confidence": 0.9,
        "predicted_tag": "mlops",
        "probabilities": {"mlops": 0.9, "other": 0.1},
        "model_version": "v1",
        "role": "canary",
        "latency_ms": 12.0,
        "decided_at": NOW,
        **changes,
    }
    return Classification(**fields)


def human_decision(**changes: Any) -> Classification:
    fields: dict[str, Any] = {
        "schema_version": 2,
        "item_id": "a1",
        "tag": "other",
        "route": HUMAN,
        "confidence": 0.4,
        "predicted_tag": "mlops",
        "probabilities": {"mlops": 0.4, "other": 0.35},
        "model_version": "v1",
        "role": None,
        "latency_ms": 90_000.0,
        "decided_at": NOW,
        "label_id": "l1",
        **changes,
    }
    return Classification(**fields)


class ClassificationV1(Message):
    """The contract as a consumer from before human decisions knows it."""

    SUPPORTED_VERSIONS: ClassVar[frozenset[int]] = frozenset({1})

    schema_version: Literal[1] = 1
    item_id: str
    tag: str
    route: Literal["auto", "review"]
    confidence: float
    predicted_tag: str | None = None
    probabilities: dict[str, float]
    model_version: str
    role: Literal["stable", "canary"] = "stable"
    latency_ms: float
    decided_at: AwareDatetime


def test_a_model_decision_is_still_version_1_and_round_trips() -> None:
    decision = model_decision()
    raw = decision.encode()

    assert decision.schema_version == 1
    assert not decision.is_human
    assert Classification.decode(raw) == decision
    assert ClassificationV1.decode(raw).route == "auto"


def test_a_human_decision_round_trips_without_a_role() -> None:
    decision = human_decision()
    raw = decision.encode()

    assert b'"role"' not in raw
    assert decision.is_human
    assert Classification.decode(raw) == decision


def test_a_consumer_of_version_1_dead_letters_a_human_decision() -> None:
    with pytest.raises(MessageError, match="unsupported schema_version 2"):
        ClassificationV1.decode(human_decision().encode())


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"schema_version": 1}, "a human decision is schema_version 2"),
        ({"label_id": None}, "a human decision names its label_id"),
    ],
)
def test_a_human_decision_must_be_version_2_with_its_label(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        human_decision(**changes)


def test_a_model_decision_has_a_role_and_no_label() -> None:
    with pytest.raises(ValidationError, match="label_id belongs to human decisions only"):
        model_decision(label_id="l1")
    with pytest.raises(ValidationError, match="a model decision names its role"):
        model_decision(role=None)


def test_a_version_1_record_claiming_route_human_is_refused() -> None:
    raw = human_decision().encode().replace(b'"schema_version":2', b'"schema_version":1')

    with pytest.raises(MessageError, match="a human decision is schema_version 2"):
        Classification.decode(raw)
