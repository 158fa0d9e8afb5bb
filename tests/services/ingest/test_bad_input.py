"""Every limit answered with a 4xx naming the field and the reason (never a 5xx)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.ingest.app import create_app
from shared.settings import Settings
from tests.services.ingest.conftest import ingest_settings, metric, running

pytestmark = pytest.mark.kafka

MAX_BODY = 4096


@pytest.fixture
async def client(
    topics: Settings, metrics_registry: CollectorRegistry
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ingest_settings(
        topics,
        ingest_max_body_bytes=MAX_BODY,
        ingest_max_batch_items=3,
        max_title_chars=50,
        max_description_chars=500,
    )
    async with running(create_app(settings, metrics_registry=metrics_registry)) as http:
        yield http


def fields(response: httpx.Response) -> list[str | None]:
    body = response.json()
    assert isinstance(body["detail"], list), body
    assert all(isinstance(e["reason"], str) and e["reason"] for e in body["detail"]), body
    return [e["field"] for e in body["detail"]]


@pytest.mark.parametrize(
    ("item", "field", "reason"),
    [
        ({"title": "t" * 51}, "title", "at most 50 characters"),
        ({"title": "t", "description": "d" * 501}, "description", "at most 500"),
        ({"title": "t", "url": "https://e.org/" + "p" * 2040}, "url", "at most 2048"),
        ({"title": "t", "source": "s" * 201}, "source", "at most 200"),
        ({"title": "t", "external_id": "e" * 201}, "external_id", "at most 200"),
        ({"title": "t", "url": "ftp://e.org/x"}, "url", "scheme must be http or https"),
        ({"title": "t", "url": "file:///etc/passwd"}, "url", "scheme must be http or https"),
        ({"title": " \x00\u0007 "}, "title", "must not be empty"),
        ({"description": "no title"}, "title", "field required"),
        ({"title": "t", "colour": "red"}, "colour", "unknown field"),
        ({"title": ["a list"]}, "title", "valid string"),
        ({"title": "t", "created_at": "yesterday"}, "created_at", "datetime"),
        ({"title": "t", "created_at": "9999-12-31T23:59:59-23:00"}, "created_at", "range"),
    ],
)
async def test_bad_item_fields(
    client: httpx.AsyncClient, item: dict[str, Any], field: str, reason: str
) -> None:
    response = await client.post("/v1/items", json=item)

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["field"] == field
    assert reason in error["reason"]


async def test_rejections_are_counted_by_reason(
    client: httpx.AsyncClient, metrics_registry: CollectorRegistry
) -> None:
    await client.post("/v1/items", json={"title": "t" * 51, "url": "ftp://x.org"})
    await client.post("/v1/items", json={"title": "t", "nope": 1})

    def rejections(reason: str) -> float:
        return metric(metrics_registry, "tagstream_ingest_rejections_total", reason=reason)

    assert (rejections("title_too_long"), rejections("bad_url_scheme")) == (1, 1)
    assert rejections("unknown_field") == 1
    assert metric(metrics_registry, "tagstream_ingest_items_total", result="rejected") == 2
    assert (
        metric(
            metrics_registry, "tagstream_ingest_requests_total", endpoint="/v1/items", status="422"
        )
        == 2
    )


async def test_lone_surrogates_are_refused_cleanly(client: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    in_value = b'{"title": "bad \\ud800 text"}'
    in_key = b'{"title": "t", "\\udfff": 1}'

    value_response = await client.post("/v1/items", content=in_value, headers=headers)
    key_response = await client.post("/v1/items", content=in_key, headers=headers)

    assert (value_response.status_code, fields(value_response)) == (422, ["title"])
    assert key_response.status_code == 422
    assert len(fields(key_response)) == 1


async def test_invalid_json_and_wrong_shapes(client: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    broken = await client.post("/v1/items", content=b'{"title": ', headers=headers)
    array = await client.post("/v1/items", json=["title"])
    empty = await client.post("/v1/items", content=b"", headers=headers)
    deep = await client.post("/v1/items", content=b"[" * 2000 + b"]" * 2000, headers=headers)
    text = await client.post("/v1/items", content=b"title", headers={"content-type": "text/plain"})
    latin1 = await client.post("/v1/items", content=b'{"title": "\xe9t\xe9"}', headers=headers)

    assert (broken.status_code, fields(broken)) == (422, ["body"])
    assert "invalid JSON" in broken.json()["detail"][0]["reason"]
    assert (array.status_code, fields(array)) == (422, ["body"])
    assert (empty.status_code, fields(empty)) == (422, ["body"])
    assert (deep.status_code, fields(deep)) == (422, ["body"])
    assert (text.status_code, fields(text)) == (422, ["body"])
    assert (latin1.status_code, fields(latin1)) == (422, ["body"])


async def test_body_over_the_limit_is_413_by_content_length(
    client: httpx.AsyncClient, metrics_registry: CollectorRegistry
) -> None:
    response = await client.post("/v1/items", json={"title": "t", "description": "d" * MAX_BODY})

    assert response.status_code == 413
    assert fields(response) == ["body"]
    assert str(MAX_BODY) in response.json()["detail"][0]["reason"]
    assert (
        metric(metrics_registry, "tagstream_ingest_rejections_total", reason="body_too_large") == 1
    )
    assert (
        metric(
            metrics_registry, "tagstream_ingest_requests_total", endpoint="/v1/items", status="413"
        )
        == 1
    )


async def test_streamed_body_over_the_limit_is_413_without_content_length(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "t", "description": "'
        for _ in range(10):
            yield b"d" * 1000
        yield b'"}'

    response = await client.post(
        "/v1/items", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert fields(response) == ["body"]


async def test_streamed_body_under_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "streamed'
        yield b' in pieces"}'

    response = await client.post(
        "/v1/items", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 202, response.text


async def test_batch_limits(client: httpx.AsyncClient, metrics_registry: CollectorRegistry) -> None:
    too_many = await client.post("/v1/items:batch", json={"items": [{"title": "t"}] * 4})
    empty = await client.post("/v1/items:batch", json={"items": []})
    not_a_list = await client.post("/v1/items:batch", json={"items": {"title": "t"}})
    missing = await client.post("/v1/items:batch", json={"title": "t"})

    assert (too_many.status_code, fields(too_many)) == (413, ["items"])
    assert "at most 3" in too_many.json()["detail"][0]["reason"]
    assert (empty.status_code, fields(empty)) == (422, ["items"])
    assert (not_a_list.status_code, fields(not_a_list)) == (422, ["items"])
    assert missing.status_code == 422
    assert set(fields(missing)) == {"items", "title"}
    assert (
        metric(metrics_registry, "tagstream_ingest_rejections_total", reason="batch_too_large") == 1
    )


async def test_idempotency_key_is_bounded(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/items", json={"title": "t"}, headers={"Idempotency-Key": "k" * 201}
    )

    assert response.status_code == 422
    assert fields(response) == ["Idempotency-Key"]  # a header by its HTTP name


async def test_unknown_paths_and_methods_keep_the_error_shape(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing")
    wrong_method = await client.get("/v1/items")

    assert (missing.status_code, fields(missing)) == (404, [None])
    assert (wrong_method.status_code, fields(wrong_method)) == (405, [None])
