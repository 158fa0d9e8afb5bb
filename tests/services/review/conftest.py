"""Review fixtures: a migrated database of each backend and a factory of review requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.review.service import POLICY_KEY, ReviewPolicy, store_request
from shared.db.session import make_engine, make_session_factory
from shared.messages import ReviewRequest
from tests.fixtures.db import migrated

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
POLICY = ReviewPolicy(
    approved_tags=("mlops", "computer-vision", "natural-language-processing", "other"),
    lease=timedelta(seconds=300),
    undo_window=timedelta(seconds=120),
)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    migrated(database_url)
    built = make_engine(database_url)
    yield built
    built.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    factory = make_session_factory(engine, immediate=True)
    factory.configure(info={POLICY_KEY: POLICY})
    return factory


def request(
    item_id: str, confidence: float = 0.5, minute: int = 0, **extra: object
) -> ReviewRequest:
    received = T0 - timedelta(hours=1) + timedelta(minutes=minute)
    fields: dict[str, object] = {
        "item_id": item_id,
        "title": f"title {item_id}",
        "description": "a description",
        "url": f"https://example.com/{item_id}",
        "reason": "low_confidence",
        "predicted_tag": "mlops",
        "confidence": confidence,
        "probabilities": {"mlops": confidence, "other": 1 - confidence},
        "model_version": "v1",
        "received_at": received,
        "requested_at": received,
    }
    fields.update(extra)
    return ReviewRequest.model_validate(fields)


Enqueue = Callable[..., None]


@pytest.fixture
def enqueue(sessions: sessionmaker[Session]) -> Enqueue:
    def add(*requests: ReviewRequest) -> None:
        with sessions.begin() as session:
            for r in requests:
                store_request(session, r, T0)

    return add
