"""Message builders for the feedback tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared.messages import Classification, ContentItem, FeedbackLabel

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def label(
    item_id: str,
    tag: str,
    *,
    source: str = "reviewer",
    labeler: str = "alice",
    minute: int = 0,
    label_id: str | None = None,
    audit: bool = False,
    version: str | None = None,
) -> FeedbackLabel:
    return FeedbackLabel(
        label_id=label_id or uuid.uuid4().hex,
        item_id=item_id,
        tag=tag,
        source=source,
        labeler=labeler,
        labeled_at=T0 + timedelta(minutes=minute),
        audit=audit,
        model_version=version,
    )


def classified(
    item_id: str,
    predicted: str | None,
    *,
    version: str = "v1",
    role: str = "stable",
    route: str = "auto",
) -> Classification:
    return Classification(
        item_id=item_id,
        tag=predicted if route == "auto" and predicted else "needs_review",
        route=route,
        confidence=0.9,
        predicted_tag=predicted,
        probabilities={"mlops": 0.9, "other": 0.1},
        model_version=version,
        role=role,
        latency_ms=1.0,
        decided_at=T0,
    )


def human(item_id: str, tag: str, *, guessed: str = "mlops", version: str = "v1") -> Classification:
    """A reviewer's decision on content.classified, after ``version`` guessed ``guessed``."""
    return Classification(
        schema_version=2,
        item_id=item_id,
        tag=tag,
        route="human",
        confidence=0.4,
        predicted_tag=guessed,
        probabilities={"mlops": 0.4, "other": 0.3},
        model_version=version,
        latency_ms=60_000.0,
        decided_at=T0 + timedelta(minutes=1),
        label_id=uuid.uuid4().hex,
    )


def content(
    item_id: str, title: str = "Kubernetes serving pipeline", minute: int = 0
) -> ContentItem:
    return ContentItem(
        item_id=item_id,
        title=title,
        description="monitoring deployment drift",
        received_at=T0 + timedelta(minutes=minute),
    )
