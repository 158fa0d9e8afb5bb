"""The JSON API over ASGI: token auth, roles, claim/label/skip/undo contract, error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.review.app import create_app
from services.review.auth import create_account
from services.review.service import store_request
from services.review.settings import ReviewSettings
from tests.fixtures.db import migrated
from tests.services.review.conftest import request

NOW = datetime.now(UTC)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    settings = ReviewSettings(
        environment="test", database_url=migrated(f"sqlite:///{tmp_path / 'review.db'}")
    )
    app = create_app(settings, metrics_registry=CollectorRegistry(), run_kafka=False)
    async with app.router.lifespan_context(app):
        database = app.state.review_db
        tokens: dict[str, str] = {}
        with database.sessions.begin() as session:
            for name, role in (("ann", "reviewer"), ("bob", "reviewer"), ("root", "admin")):
                tokens[name] = create_account(session, name, role, NOW)[1]  # type: ignore[arg-type]
            store_request(session, request("a", 0.2, received_at=NOW, requested_at=NOW), NOW)
            store_request(session, request("b", 0.4, received_at=NOW, requested_at=NOW), NOW)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://review") as http:
            yield http, tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_requests_without_a_valid_token_are_401(
    client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    http, _ = client
    missing = await http.post("/v1/review/claim")
    wrong = await http.post("/v1/review/claim", headers=bearer("nope"))
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["detail"][0]["field"] == "Authorization"  # one rule: header name


async def test_stats_are_for_admins_only(
    client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    http, tokens = client
    assert (await http.get("/v1/review/stats", headers=bearer(tokens["ann"]))).status_code == 403
    response = await http.get("/v1/review/stats", headers=bearer(tokens["root"]))
    assert response.status_code == 200
    body = response.json()
    assert body["queue_depth"] == 2
    assert body["labels_per_reviewer"] == {}
    assert body["agreement"] is None


async def test_claim_label_skip_undo_contract(
    client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    http, tokens = client
    ann, bob = bearer(tokens["ann"]), bearer(tokens["bob"])
    claimed = await http.post("/v1/review/claim", headers=ann)
    assert claimed.status_code == 200
    item = claimed.json()
    assert set(item) == {
        "item_id",
        "title",
        "description",
        "url",
        "probabilities",
        "predicted_tag",
        "confidence",
        "model_version",
        "audit",
        "reason",
        "suggested_tag",
        "report_comment",
        "report_count",
        "lease_expires_at",
        "queue_depth",
    }
    assert item["item_id"] == "a"
    assert (item["reason"], item["suggested_tag"]) == ("low_confidence", None)
    assert item["queue_depth"] == 2
    assert (await http.post("/v1/review/claim", headers=ann)).json()["item_id"] == "a"

    assert (
        await http.post("/v1/review/items/a/label", headers=bob, json={"tag": "mlops"})
    ).status_code == 409
    bad = await http.post("/v1/review/items/a/label", headers=ann, json={"tag": "cooking"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "tag"
    missing = await http.post("/v1/review/items/a/label", headers=ann, json={})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["field"] == "tag"

    labeled = await http.post("/v1/review/items/a/label", headers=ann, json={"tag": "mlops"})
    assert labeled.status_code == 200
    assert set(labeled.json()) == {"label_id", "item_id", "tag"}
    assert labeled.json()["item_id"] == "a"

    undone = await http.post("/v1/review/undo", headers=ann)
    assert undone.status_code == 200
    assert undone.json()["item_id"] == "a"
    assert (await http.post("/v1/review/undo", headers=ann)).status_code == 409

    assert (await http.post("/v1/review/items/a/skip", headers=ann)).status_code == 200
    assert (await http.post("/v1/review/items/a/skip", headers=ann)).status_code == 409
    assert (await http.post("/v1/review/claim", headers=ann)).json()["item_id"] == "b"
    assert (await http.post("/v1/review/claim", headers=bob)).json()["item_id"] == "a"
    await http.post("/v1/review/items/b/label", headers=ann, json={"tag": "other"})
    await http.post("/v1/review/items/a/label", headers=bob, json={"tag": "other"})
    assert (await http.post("/v1/review/claim", headers=ann)).status_code == 204


async def test_probes_and_metrics(client: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    http, tokens = client
    await http.post("/v1/review/claim", headers=bearer(tokens["ann"]))
    assert (await http.get("/healthz")).status_code == 200
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "schema": True}
    text = (await http.get("/metrics")).text
    assert 'tagstream_review_claims_total{result="claimed"} 1.0' in text
    assert "tagstream_review_queue_depth" in text
