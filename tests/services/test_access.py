"""Machine clients' keys on every state-changing endpoint of ingest, feedback and rollout,
against the real broker and both databases: a missing, wrong or foreign credential is
401 and changes no row and no topic; a review account's token (reviewer or admin, made
by ``tagstream users add``) is 403 and changes nothing; unknown body fields (mass
assignment) are refused (422 naming the field, or the one item rejected) and nothing is
produced or stored.

The keys come from settings: revoking one is removing it from the setting (and
restarting), which is what "wrong" covers here. These services know no review accounts;
they recognise a review token by its prefix (``shared.security.REVIEW_TOKEN_PREFIX``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import MetaData, create_engine, select
from typer.testing import CliRunner

from services.feedback.app import create_app as feedback_app
from services.feedback.settings import FeedbackSettings
from services.ingest.app import create_app as ingest_app
from services.ingest.settings import IngestSettings
from services.rollout.app import create_app as rollout_app
from services.rollout.settings import RolloutSettings
from shared.registry import ModelRegistry
from shared.security import REVIEW_TOKEN_PREFIX
from shared.settings import Settings
from tagstream.cli.main import app as cli
from tests.fixtures.kafka import eventually
from tests.fixtures.offsets import topic_ends

pytestmark = pytest.mark.kafka
KEY = "the-right-key-0123456789"
BAD_CREDENTIALS: dict[str, dict[str, str]] = {
    "missing": {},
    "wrong": {"Authorization": "Bearer a-revoked-or-made-up-key"},
    "not bearer": {"Authorization": f"Basic {KEY}"},
    "empty bearer": {"Authorization": "Bearer "},
    # a token from before review tokens had a prefix: nothing tells it from a made-up key
    "unprefixed review token": {"Authorization": "Bearer reviewer-token-from-before-tsr"},
}
#: what a client might try to set that only the system decides
SMUGGLED = ("model_version", "reviewer_id", "role", "tag", "status", "label_id")


def database_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table at ``url``, sorted: equal before and after means unchanged."""
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return {
                name: sorted(map(tuple, connection.execute(select(table))), key=repr)
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()


def review_tokens(database_url: str) -> dict[str, str]:
    """A reviewer's and an admin's API token, made as an operator does: ``tagstream users
    add`` on the review database (here the service's own database, as in a one-database
    deployment; the services still never read the review tables)."""
    env = {"TAGSTREAM_ENVIRONMENT": "test", "TAGSTREAM_DATABASE_URL": database_url}
    tokens = {}
    for name, role in (("rita", "reviewer"), ("ann", "admin")):
        added = CliRunner().invoke(cli, ["users", "add", name, "--role", role], env=env)
        assert added.exit_code == 0, added.output
        tokens[role] = added.stdout.strip().splitlines()[-1]
        assert tokens[role].startswith(REVIEW_TOKEN_PREFIX)
    return tokens


@dataclass
class Service:
    http: httpx.AsyncClient
    settings: Settings
    topic: str

    async def state(self) -> tuple[dict[str, Any], dict[str, dict[int, int]]]:
        return database_rows(self.settings.database_url), await topic_ends(
            self.settings, self.topic
        )


@asynccontextmanager
async def serving(app: FastAPI, settings: Settings, topic: str) -> AsyncIterator[Service]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
            yield Service(http, settings, topic)


def _values(topics: Settings, url: str, tmp_path: Path) -> dict[str, Any]:
    return {**topics.model_dump(), "database_url": url, "registry_dir": tmp_path / "registry"}


async def _refused_unchanged(
    service: Service,
    calls: list[tuple[str, Any]],
    check: Callable[[httpx.Response], bool],
    variable: str,
) -> dict[str, str]:
    """Every call refused, nothing changed; returns the review tokens it tried."""
    tokens = review_tokens(service.settings.database_url)
    before = await service.state()
    for what, headers in BAD_CREDENTIALS.items():
        for path, body in calls:
            response = await service.http.post(path, json=body, headers=headers)
            assert response.status_code == 401, (what, path, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert response.json()["detail"][0]["field"] == "Authorization"
            assert KEY not in response.text
    # a review token, real (reviewer, admin) or forged: the wrong kind of credential
    tokens["forged"] = REVIEW_TOKEN_PREFIX + "not-an-account-0123456789"
    for what, token in tokens.items():
        for path, body in calls:
            response = await service.http.post(
                path, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 403, (what, path, response.text)
            [error] = response.json()["detail"]
            assert error["field"] == "Authorization"
            assert "a reviewer token cannot call" in error["reason"]
            assert variable in error["reason"]
            assert token not in response.text
            assert KEY not in response.text
    assert await service.state() == before
    # the right key does change the topic: the comparison above can fail
    path, body = calls[0]
    done = await service.http.post(path, json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert check(done), done.text
    _, ends = before
    await eventually(lambda: topic_ends(service.settings, service.topic), lambda e: e != ends)
    return tokens


async def test_ingest(topics: Settings, migrated_database_url: str, tmp_path: Path) -> None:
    settings = IngestSettings(
        **_values(topics, migrated_database_url, tmp_path), ingest_api_keys=KEY
    )
    app = ingest_app(settings, metrics_registry=CollectorRegistry())
    async with serving(app, settings, settings.topic_raw) as ingest:
        await asyncio.wait_for(app.state.ingest.publisher.wait_connected(), 20)
        auth = {"Authorization": f"Bearer {KEY}"}
        before = await ingest.state()
        for field in SMUGGLED:
            item = {"title": "A smuggled field", field: "admin"}
            one = await ingest.http.post("/v1/items", json=item, headers=auth)
            assert one.status_code == 422
            assert {"field": field, "reason": "unknown field"} in one.json()["detail"]
            batch = await ingest.http.post("/v1/items:batch", json={"items": [item]}, headers=auth)
            assert batch.status_code == 202
            [result] = batch.json()["items"]
            assert result["status"] == "rejected"
            assert {"field": field, "reason": "unknown field"} in result["errors"]
            envelope = await ingest.http.post(
                "/v1/items:batch", json={"items": [{"title": "t"}], field: "x"}, headers=auth
            )
            assert envelope.status_code == 422
            assert envelope.json()["detail"] == [{"field": field, "reason": "unknown field"}]
        assert await ingest.state() == before
        await _refused_unchanged(
            ingest,
            [("/v1/items", {"title": "t"}), ("/v1/items:batch", {"items": [{"title": "t"}]})],
            lambda r: r.status_code == 202,
            "TAGSTREAM_INGEST_API_KEYS",
        )


async def test_feedback(topics: Settings, migrated_database_url: str, tmp_path: Path) -> None:
    settings = FeedbackSettings(
        **_values(topics, migrated_database_url, tmp_path), feedback_api_keys=KEY
    )
    app = feedback_app(settings, metrics_registry=CollectorRegistry(), monitor=False)
    report = {"item_id": "item-1", "suggested_tag": "mlops", "end_user_id": "u-1"}
    async with serving(app, settings, settings.topic_feedback) as feedback:
        auth = {"Authorization": f"Bearer {KEY}"}
        before = await feedback.state()
        for field in SMUGGLED:
            if field in report:
                continue
            response = await feedback.http.post(
                "/v1/reports", json={**report, field: "x"}, headers=auth
            )
            assert response.status_code == 422
            assert response.json()["detail"] == [{"field": field, "reason": "unknown field"}]
        assert await feedback.state() == before
        await _refused_unchanged(
            feedback,
            [("/v1/reports", report)],
            lambda r: r.status_code == 202,
            "TAGSTREAM_FEEDBACK_API_KEYS",
        )


async def test_rollout(topics: Settings, migrated_database_url: str, tmp_path: Path) -> None:
    settings = RolloutSettings(
        **_values(topics, migrated_database_url, tmp_path), rollout_admin_keys=(KEY,)
    )
    with ModelRegistry.open(settings) as registry:
        for n in (1, 2):
            registry.register(
                artifacts={"model.onnx": f"model-{n}".encode()},
                data_hash="d" * 64,
                params={},
                metrics={},
                thresholds={"mlops": 0.9},
                classes=["mlops", "other"],
                model_card="#",
            )
        version = next(v.version for v in registry.list_versions() if v.status == "candidate")
    app = rollout_app(settings, metrics_registry=CollectorRegistry(), run_loop=False)
    async with serving(app, settings, settings.topic_models) as rollout:
        auth = {"Authorization": f"Bearer {KEY}"}
        before = await rollout.state()
        for field in SMUGGLED:
            start = await rollout.http.post(
                "/v1/rollouts", json={"version": version, field: "x"}, headers=auth
            )
            assert start.status_code == 422
            assert start.json()["detail"] == [{"field": field, "reason": "unknown field"}]
            for action in ("pause", "resume", "abort"):
                response = await rollout.http.post(
                    f"/v1/rollouts/{action}", json={field: "x"}, headers=auth
                )
                assert response.status_code == 422, action
        assert await rollout.state() == before
        tokens = await _refused_unchanged(
            rollout,
            [
                ("/v1/rollouts", {"version": version}),
                ("/v1/rollouts/pause", None),
                ("/v1/rollouts/resume", None),
                ("/v1/rollouts/abort", None),
            ],
            lambda r: r.status_code == 201,
            "TAGSTREAM_ROLLOUT_ADMIN_KEYS",
        )
        # reading the rollouts needs an admin key too
        for token in tokens.values():
            status = await rollout.http.get(
                "/v1/rollouts", headers={"Authorization": f"Bearer {token}"}
            )
            assert status.status_code == 403, status.text
        assert (await rollout.http.get("/v1/rollouts", headers=auth)).status_code == 200
