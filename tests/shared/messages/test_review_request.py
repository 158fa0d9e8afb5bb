"""ReviewRequest schema version 2: ``user_report`` travels only in version 2.

The reason enum widened, which a rolling deploy does not survive within one version, so
the new reason is tied to the new version: consumers on the old code dead-letter it as an
unsupported version (never as a half-understood version 1), and ordinary requests keep
being version 1 for them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from shared.messages import MessageError, MessageErrorKind, ReviewRequest

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def request(**values: Any) -> ReviewRequest:
    fields: dict[str, Any] = {
        "item_id": "a1",
        "title": "Serving models",
        "reason": "low_confidence",
        "predicted_tag": "mlops",
        "confidence": 0.4,
        "probabilities": {"mlops": 0.4, "other": 0.6},
        "model_version": "v1",
        "received_at": NOW,
        "requested_at": NOW,
    }
    return ReviewRequest(**{**fields, **values})


class ReviewRequestV1Consumer(ReviewRequest):
    """A consumer still on the code that knows version 1 only."""

    SUPPORTED_VERSIONS: ClassVar[frozenset[int]] = frozenset({1})


def test_ordinary_requests_stay_version_1() -> None:
    raw = request().encode()
    assert json.loads(raw)["schema_version"] == 1
    assert ReviewRequestV1Consumer.decode(raw).reason == "low_confidence"


def test_a_user_report_is_version_2_and_carries_the_report() -> None:
    report = request(
        schema_version=2,
        reason="user_report",
        suggested_tag="computer-vision",
        comment="it is about images",
        report_count=3,
    )
    decoded = ReviewRequest.decode(report.encode())
    assert (decoded.schema_version, decoded.reason) == (2, "user_report")
    assert (decoded.suggested_tag, decoded.comment, decoded.report_count) == (
        "computer-vision",
        "it is about images",
        3,
    )


def test_a_user_report_cannot_be_built_as_version_1() -> None:
    with pytest.raises(ValidationError, match="needs schema_version 2"):
        request(reason="user_report", suggested_tag="mlops")


def test_a_version_1_record_with_the_new_reason_is_refused_on_decode() -> None:
    raw = json.dumps({**json.loads(request().encode()), "reason": "user_report"}).encode()
    with pytest.raises(MessageError, match="needs schema_version 2") as caught:
        ReviewRequest.decode(raw)
    assert caught.value.kind is MessageErrorKind.INVALID_FIELD


def test_an_old_consumer_dead_letters_a_user_report_as_an_unsupported_version() -> None:
    raw = request(schema_version=2, reason="user_report", suggested_tag="mlops").encode()
    with pytest.raises(MessageError, match="unsupported schema_version 2") as caught:
        ReviewRequestV1Consumer.decode(raw)
    assert caught.value.kind is MessageErrorKind.UNSUPPORTED_VERSION
