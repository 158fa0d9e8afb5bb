"""Who may change what in review, against the real broker and both databases: a missing,
wrong, expired or revoked token or a disabled account is 401 and changes no row and no
topic; another's claim is 409; a reviewer on an admin endpoint is 403; unknown body
fields (mass assignment) are 422 and nothing is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from services.review import accounts
from services.review.app import create_app
from services.review.service import store_request
from services.review.settings import ReviewSettings
from services.review.tables import (
    ReviewAccountRow,
    ReviewItemRow,
    ReviewLabelRow,
    ReviewOutboxRow,
    ReviewSkipRow,
)
from shared.db.session import make_session_factory
from shared.settings import Settings
from tests.fixtures.kafka import eventually
from tests.fixtures.offsets import topic_ends
from tests.services.review.conftest import request

pytestmark = pytest.mark.kafka
NOW = datetime.now(UTC)
TABLES = (ReviewAccountRow, ReviewItemRow, ReviewLabelRow, ReviewSkipRow, ReviewOutboxRow)
#: every state-changing call of the JSON API (item "a" is ann's claim in these tests)
CHANGES = (
    ("/v1/review/claim", None),
    ("/v1/review/items/a/label", {"tag": "mlops"}),
    ("/v1/review/items/a/skip", None),
    ("/v1/review/undo", None),
)


@dataclass
class Review:
    app: FastAPI
    http: httpx.AsyncClient
    settings: ReviewSettings
    tokens: dict[str, str]

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        # A plain (deferred) read: the service's own sessions BEGIN IMMEDIATE on SQLite, and
        # one of those blocking the event loop would wait for the outbox relay, which holds
        # the write lock while it produces, on that same loop.
        engine = self.app.state.review_db.engine
        with make_session_factory(engine).begin() as session:
            return {
                table.__tablename__: [
                    {c.key: getattr(row, c.key) for c in table.__table__.columns}
                    for row in session.scalars(select(table))
                ]
                for table in TABLES
            }

    async def ends(self) -> dict[str, dict[int, int]]:
        return await topic_ends(
            self.settings, self.settings.topic_feedback, self.settings.topic_classified
        )

    def as_(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture
async def review(topics: Settings, migrated_database_url: str) -> AsyncIterator[Review]:
    values = {
        **topics.model_dump(),
        "database_url": migrated_database_url,
        "review_token_max_age_seconds": 3600,
    }
    settings = ReviewSettings(**values)
    app = create_app(settings, metrics_registry=CollectorRegistry())
    async with app.router.lifespan_context(app):
        tokens: dict[str, str] = {}
        with app.state.review_db.sessions.begin() as session:
            for name, role, created in (
                ("ann", "reviewer", NOW),
                ("bob", "reviewer", NOW),
                ("root", "admin", NOW),
                ("old", "reviewer", NOW - timedelta(hours=2)),  # token past its hour
                ("gone", "reviewer", NOW),
                ("off", "reviewer", NOW),
            ):
                tokens[name] = accounts.create_account(session, name, role, created)[1]  # type: ignore[arg-type]
            accounts.revoke_token(session, "gone", NOW)
            accounts.disable_account(session, "off", NOW)
            for item_id, confidence in (("a", 0.1), ("b", 0.2)):
                store_request(
                    session, request(item_id, confidence, received_at=NOW, requested_at=NOW), NOW
                )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://review") as http:
            yield Review(app, http, settings, tokens)


async def test_bad_credentials_are_401_and_change_nothing(review: Review) -> None:
    ann = review.as_("ann")
    assert (await review.http.post("/v1/review/claim", headers=ann)).json()["item_id"] == "a"
    rows, ends = review.rows(), await review.ends()
    credentials: dict[str, dict[str, str]] = {
        "missing": {},
        "wrong": {"Authorization": "Bearer not-a-token"},
        "not bearer": {"Authorization": f"Basic {review.tokens['ann']}"},
        "expired": review.as_("old"),
        "revoked": review.as_("gone"),
        "disabled": review.as_("off"),
    }
    for what, headers in credentials.items():
        for path, body in CHANGES:
            response = await review.http.post(path, json=body, headers=headers)
            assert response.status_code == 401, (what, path)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert response.json()["detail"][0]["field"] == "Authorization"
    reasons = {
        what: (await review.http.post("/v1/review/claim", headers=h)).json()["detail"][0]["reason"]
        for what, h in credentials.items()
        if what in ("expired", "revoked", "disabled")
    }
    assert reasons == {
        "expired": "token expired",
        "revoked": "token revoked",
        "disabled": "account disabled",
    }
    assert review.rows() == rows
    assert await review.ends() == ends

    # the same label with ann's token does reach the topics: the check above can fail
    done = await review.http.post("/v1/review/items/a/label", json={"tag": "mlops"}, headers=ann)
    assert done.status_code == 200
    moved = await eventually(review.ends, lambda now: now != ends)
    assert moved != ends


async def test_another_reviewers_claim_is_409_and_admin_endpoints_are_403(
    review: Review,
) -> None:
    assert (await review.http.post("/v1/review/claim", headers=review.as_("ann"))).is_success
    rows = review.rows()
    bob = review.as_("bob")
    label = await review.http.post("/v1/review/items/a/label", json={"tag": "mlops"}, headers=bob)
    skip = await review.http.post("/v1/review/items/a/skip", headers=bob)
    for response in (label, skip):
        assert response.status_code == 409
        assert response.json()["detail"][0]["field"] == "item_id"
    assert (await review.http.post("/v1/review/undo", headers=bob)).status_code == 409
    stats = await review.http.get("/v1/review/stats", headers=bob)
    assert stats.status_code == 403
    assert stats.json()["detail"][0]["field"] == "Authorization"
    assert review.rows() == rows
    assert (await review.http.get("/v1/review/stats", headers=review.as_("root"))).is_success


@pytest.mark.parametrize("extra", ["reviewer_id", "reviewer", "model_version", "role", "label_id"])
async def test_unknown_label_fields_are_422_and_nothing_is_stored(
    review: Review, extra: str
) -> None:
    ann = review.as_("ann")
    await review.http.post("/v1/review/claim", headers=ann)
    rows = review.rows()
    body = {"tag": "mlops", extra: "root"}
    response = await review.http.post("/v1/review/items/a/label", json=body, headers=ann)
    assert response.status_code == 422
    assert response.json()["detail"] == [{"field": extra, "reason": "unknown field"}]
    assert review.rows() == rows


async def test_a_label_is_stored_as_the_tokens_account_with_the_items_model(
    review: Review,
) -> None:
    ann = review.as_("ann")
    await review.http.post("/v1/review/claim", headers=ann)
    assert (
        await review.http.post("/v1/review/items/a/label", json={"tag": "mlops"}, headers=ann)
    ).is_success
    (label,) = review.rows()["review_labels"]
    assert (label["reviewer"], label["model_version"], label["tag"]) == ("ann", "v1", "mlops")


async def test_web_actions_without_a_session_change_nothing(review: Review) -> None:
    await review.http.post("/v1/review/claim", headers=review.as_("ann"))
    rows = review.rows()
    form = {"item_id": "a", "tag": "mlops", "csrf_token": "guess"}
    for path in (
        "/review/label",
        "/review/skip",
        "/review/undo",
        "/admin/accounts/ann/disable",
        "/admin/accounts/ann/remove",
        "/admin/accounts/ann/token/rotate",
        "/admin/accounts/ann/password",
    ):
        response = await review.http.post(path, data={**form, "password": "x" * 12})
        # a browser without a session is sent to log in
        assert (response.status_code, response.headers["location"]) == (303, "/login"), path
    assert review.rows() == rows
