"""Schemathesis against the review API with auth configured: real broker (consumer and
outbox relay running), SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from schemathesis.generation import GenerationMode

from services.review.app import create_app
from services.review.auth import create_account
from services.review.service import store_request
from services.review.settings import ReviewSettings
from shared.settings import Settings
from tests.services.openapi_fuzz import MODES, fuzz, lifespan_running
from tests.services.review.conftest import request

pytestmark = pytest.mark.kafka
PATHS = {
    "/v1/review/claim",
    "/v1/review/items/{item_id}/label",
    "/v1/review/items/{item_id}/skip",
    "/v1/review/undo",
    "/v1/review/stats",
}


@pytest.fixture
def review_app(topics: Settings, migrated_database_url: str) -> Iterator[tuple[FastAPI, str]]:
    values = {**topics.model_dump(), "database_url": migrated_database_url}
    app = create_app(ReviewSettings(**values), metrics_registry=CollectorRegistry())
    with lifespan_running(app):
        now = datetime.now(UTC)
        with app.state.review_db.sessions.begin() as session:
            token = create_account(session, "root", "admin", now)[1]
            for n in range(5):
                item = request(f"item-{n}", 0.1 * n, received_at=now, requested_at=now)
                store_request(session, item, now)
        yield app, token


@pytest.mark.parametrize("mode", MODES)
def test_no_input_reaches_a_server_error(
    review_app: tuple[FastAPI, str], mode: GenerationMode
) -> None:
    app, token = review_app
    fuzz(app, {"Authorization": f"Bearer {token}"}, mode, paths=PATHS)
