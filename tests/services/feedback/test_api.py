"""POST /v1/reports: auth, validation, rate limit (fake publisher), and the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.feedback.app import create_app
from services.feedback.settings import FeedbackSettings
from shared.kafka import BrokerUnavailable
from shared.messages import FeedbackLabel
from shared.settings import Settings
from tests.fixtures.db import migrated
from tests.fixtures.kafka import read_topic

KEY = "reporter-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
GOOD = {
    "item_id": "item-1",
    "suggested_tag": "mlops",
    "end_user_id": "user-42",
    "comment": "clearly ops",
}


class FakePublisher:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail = fail

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        if self.fail:
            raise BrokerUnavailable("no acknowledgement within 5 s")
        self.sent.append((topic, key, value))


def make_settings(
    tmp_path: Path, base: Settings | None = None, **extra: object
) -> FeedbackSettings:
    values = base.model_dump() if base is not None else {}
    values.update(
        environment="test",
        database_url=migrated(f"sqlite:///{tmp_path / 'fb.db'}"),
        registry_dir=tmp_path / "registry",
        feedback_api_keys=KEY,
        **extra,
    )
    return FeedbackSettings(**values)


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://feedback") as client:
            yield client


@pytest.fixture
async def http(tmp_path: Path, publisher: FakePublisher) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        tmp_path, feedback_rate_limit_burst=3, feedback_rate_limit_per_minute=1
    )
    app = create_app(settings, publisher=publisher, consume=False, monitor=False)
    async with serve(app) as client:
        yield client


async def test_missing_or_wrong_key_is_401(
    http: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    assert (await http.post("/v1/reports", json=GOOD)).status_code == 401
    wrong = await http.post("/v1/reports", json=GOOD, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    assert wrong.json()["detail"][0]["field"] == "Authorization"
    assert publisher.sent == []


async def test_an_unapproved_tag_is_422_naming_the_field(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1/reports", json={**GOOD, "suggested_tag": "robotics"}, headers=AUTH
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == "suggested_tag"
    assert "approved" in error["reason"]


async def test_a_long_comment_is_422(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/reports", json={**GOOD, "comment": "x" * 2001}, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "comment"


@pytest.mark.parametrize(
    ("end_user", "reason"),
    [(None, "field required"), ("", "at least 1 character"), ("   ", "match pattern")],
)
async def test_a_report_without_an_end_user_is_422_naming_the_field(
    http: httpx.AsyncClient, publisher: FakePublisher, end_user: str | None, reason: str
) -> None:
    body = {k: v for k, v in GOOD.items() if k != "end_user_id"}
    if end_user is not None:
        body["end_user_id"] = end_user
    response = await http.post("/v1/reports", json=body, headers=AUTH)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == "end_user_id"
    assert reason in error["reason"]
    assert publisher.sent == []


async def test_the_rate_limit_and_the_vote_are_per_end_user(
    http: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    ann = [(await http.post("/v1/reports", json=GOOD, headers=AUTH)).status_code for _ in range(4)]
    bob = {**GOOD, "end_user_id": "user-43"}
    others = [
        (await http.post("/v1/reports", json=bob, headers=AUTH)).status_code for _ in range(3)
    ]

    assert ann == [202, 202, 202, 429]  # burst 3
    assert others == [202, 202, 202]  # another end user behind the same key has their own
    labelers = {FeedbackLabel.decode(value).labeler for _, _, value in publisher.sent}
    assert len(labelers) == 2  # one labeler (vote) per end user
    assert not any("user-4" in labeler for labeler in labelers)  # the app's id is not stored


async def test_reports_beyond_the_burst_are_429_with_retry_after(
    http: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    codes = [
        (await http.post("/v1/reports", json=GOOD, headers=AUTH)).status_code for _ in range(4)
    ]
    assert codes == [202, 202, 202, 429]
    limited = await http.post("/v1/reports", json=GOOD, headers=AUTH)
    assert int(limited.headers["Retry-After"]) >= 1
    assert len(publisher.sent) == 3
    label = FeedbackLabel.decode(publisher.sent[0][2])
    assert (label.source, label.tag, label.item_id) == ("user_report", "mlops", "item-1")
    metrics = (await http.get("/metrics")).text
    assert 'tagstream_feedback_reports_total{result="rate_limited"} 2.0' in metrics


async def test_broker_down_is_503(tmp_path: Path) -> None:
    app = create_app(
        make_settings(tmp_path), publisher=FakePublisher(fail=True), consume=False, monitor=False
    )
    async with serve(app) as client:
        response = await client.post("/v1/reports", json=GOOD, headers=AUTH)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"


async def test_probes_and_accuracy(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/readyz")).status_code == 200
    body = (await http.get("/v1/accuracy")).json()
    assert body["versions"] == []
    assert body["by_route"] == []


@pytest.mark.kafka
async def test_an_accepted_report_is_on_feedback_labels(tmp_path: Path, topics: Settings) -> None:
    app = create_app(make_settings(tmp_path, topics), consume=False, monitor=False)
    async with serve(app) as client:
        for _ in range(200):  # the producer connects in the background
            response = await client.post("/v1/reports", json=GOOD, headers=AUTH)
            if response.status_code != 503:
                break
            await asyncio.sleep(0.05)
    assert response.status_code == 202, response.text
    [value] = await read_topic(topics, topics.topic_feedback, expect=1)
    label = FeedbackLabel.decode(value)
    assert label.label_id == response.json()["label_id"]
    assert label.source == "user_report"
    assert label.comment == "clearly ops"
