"""The HTTP API against the real broker, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.messages import ContentItem
from shared.settings import Settings
from tests.fixtures.kafka import read_topic
from tests.services.ingest.conftest import ingest_settings, metric, running

pytestmark = pytest.mark.kafka


async def on_topic(settings: IngestSettings, expect: int) -> list[ContentItem]:
    values = await read_topic(settings, settings.topic_raw, expect=expect, within=10)
    return [ContentItem.decode(v) for v in values]


def detail(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert isinstance(body["detail"], list), body
    return list(body["detail"])


async def test_an_item_is_accepted_after_it_is_on_content_raw(
    client: httpx.AsyncClient, app_settings: IngestSettings, metrics_registry: CollectorRegistry
) -> None:
    response = await client.post(
        "/v1/items",
        json={
            "title": "  Vision\x00 transformers ",
            "description": "ViT for ﬁne-grained classes",
            "url": "HTTPS://Example.org/vit/?utm_source=feed#abstract",
            "source": "arxiv",
            "created_at": "2024-05-01T10:00:00+02:00",
            "external_id": "2405.001",
        },
    )

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "accepted"
    [message] = await on_topic(app_settings, expect=1)
    assert message.item_id == body["id"]
    assert message.title == "Vision transformers"
    assert message.description == "ViT for fine-grained classes"
    assert message.url == "https://example.org/vit"
    assert message.created_at is not None
    assert message.created_at.hour == 8
    assert metric(metrics_registry, "tagstream_ingest_items_total", result="accepted") == 1
    assert (
        metric(
            metrics_registry, "tagstream_ingest_requests_total", endpoint="/v1/items", status="202"
        )
        == 1
    )
    assert metric(metrics_registry, "tagstream_ingest_produce_latency_seconds_count") == 1


async def test_duplicates_and_idempotent_retries(
    client: httpx.AsyncClient, app_settings: IngestSettings
) -> None:
    first = await client.post("/v1/items", json={"title": "Diffusion", "url": "https://a.io/d"})
    same_content = await client.post("/v1/items", json={"title": "DIFFUSION "})
    same_url = await client.post("/v1/items", json={"title": "Other", "url": "https://A.io/d/"})
    keyed = await client.post("/v1/items", json={"title": "K"}, headers={"Idempotency-Key": "r1"})
    keyed_retry = await client.post(
        "/v1/items", json={"title": "K"}, headers={"Idempotency-Key": "r1"}
    )
    ext = await client.post("/v1/items", json={"title": "E1", "source": "s", "external_id": "9"})
    ext_retry = await client.post(
        "/v1/items", json={"title": "E1 edited", "source": "s", "external_id": "9"}
    )

    original = first.json()["id"]
    assert same_content.json() == {"id": original, "status": "duplicate"}
    assert same_url.json() == {"id": original, "status": "duplicate"}
    assert keyed_retry.json() == {"id": keyed.json()["id"], "status": "accepted"}
    assert ext_retry.json() == {"id": ext.json()["id"], "status": "accepted"}
    assert {r.status_code for r in (same_content, same_url, keyed_retry, ext_retry)} == {202}
    messages = await on_topic(app_settings, expect=3)
    assert sorted(m.item_id for m in messages) == sorted(
        [original, keyed.json()["id"], ext.json()["id"]]
    )


async def test_concurrent_identical_posts_get_one_id(
    client: httpx.AsyncClient, app_settings: IngestSettings
) -> None:
    body = {"title": "Same thing, many times", "url": "https://x.org/same"}
    responses = await asyncio.gather(*(client.post("/v1/items", json=body) for _ in range(16)))

    assert {r.status_code for r in responses} == {202}
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    # posts still in flight when another arrives may produce it again, under the same id
    assert {m.item_id for m in await on_topic(app_settings, expect=1)} == ids


async def test_batch_results_are_per_item_and_in_order(
    client: httpx.AsyncClient, app_settings: IngestSettings
) -> None:
    response = await client.post(
        "/v1/items:batch",
        json={
            "items": [
                {"title": "One"},
                {"title": "Two", "url": "gopher://old.net"},
                "not an object",
                {"title": "one"},
                {"title": "Three", "extra": True},
                {"title": "Four"},
            ]
        },
    )

    assert response.status_code == 202, response.text
    items = response.json()["items"]
    assert [i["index"] for i in items] == list(range(6))
    assert [i["status"] for i in items] == [
        "accepted",
        "rejected",
        "rejected",
        "duplicate",
        "rejected",
        "accepted",
    ]
    assert items[3]["id"] == items[0]["id"]
    assert items[1]["errors"] == [{"field": "url", "reason": "scheme must be http or https"}]
    assert items[2]["errors"][0]["field"] == "item"
    assert items[4]["errors"] == [{"field": "extra", "reason": "unknown field"}]
    assert "id" not in items[1]
    assert "errors" not in items[0]
    messages = await on_topic(app_settings, expect=2)
    assert sorted(m.item_id for m in messages) == sorted([items[0]["id"], items[5]["id"]])


async def test_probes_and_metrics_carry_no_content(
    client: httpx.AsyncClient, metrics_registry: CollectorRegistry
) -> None:
    await client.post("/v1/items", json={"title": "secret title", "source": "secret-source"})
    ready = await client.get("/readyz", headers={})
    health = await client.get("/healthz", headers={})
    metrics = await client.get("/metrics", headers={})

    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": True, "broker": True, "schema": True},
    }
    assert health.status_code == 200
    assert "tagstream_ingest_items_total" in metrics.text
    assert "secret" not in ready.text + health.text + metrics.text


async def test_over_the_key_rate_is_429_with_retry_after_and_nothing_written(
    topics: Settings, migrated_database_url: str, metrics_registry: CollectorRegistry
) -> None:
    settings = ingest_settings(
        topics,
        database_url=migrated_database_url,
        ingest_max_batch_items=3,
        ingest_rate_limit_items_per_second=0.1,
        ingest_rate_limit_burst_items=3,
    )
    app = create_app(settings, metrics_registry=metrics_registry)
    async with running(app) as client:
        two = {"items": [{"title": "a"}, {"title": "e"}]}
        first = await client.post("/v1/items:batch", json=two)
        assert first.status_code == 202, first.text
        over = await client.post("/v1/items:batch", json={"items": [{"title": "b"}] * 2})
        single = await client.post("/v1/items", json={"title": "d"})

    assert over.status_code == 429
    assert 1 <= int(over.headers["Retry-After"]) <= 10  # one token short at 0.1/s
    [error] = detail(over)
    assert error["field"] is None
    assert "too many items" in error["reason"]
    assert single.status_code == 202  # the one token left
    written = await on_topic(settings, expect=4)
    assert sorted(item.title for item in written) == ["a", "d", "e"]
    assert metric(metrics_registry, "tagstream_ingest_refused_total", reason="rate_limited") == 1
    assert (
        metric(
            metrics_registry,
            "tagstream_ingest_requests_total",
            endpoint="/v1/items:batch",
            status="429",
        )
        == 1
    )
