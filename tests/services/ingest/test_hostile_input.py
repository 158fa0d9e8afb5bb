"""Hostile input against the real ingest app (real broker) at its default limits: every
request gets a 4xx or a 202 whose item on content.raw is normalised, never a 5xx.

Over-long fields, 1 MB of one repeated character (also one NFKC expands 18-fold), deep
nesting, NUL, control and bidi-override characters, non-normalised unicode and
pathological token patterns. A field far over its limit is refused before it is
normalised (see ``test_validation``), so the work per request is bounded by the body cap.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.ingest.app import create_app
from shared.messages import ContentItem
from shared.settings import Settings
from tests.fixtures.kafka import read_topic
from tests.services.ingest.conftest import ingest_settings, running

pytestmark = [pytest.mark.kafka, pytest.mark.chaos]

JSON = {"content-type": "application/json"}
MB = 1_000_000


@pytest.fixture
async def client(
    topics: Settings, metrics_registry: CollectorRegistry
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ingest_settings(topics)  # the defaults: 1 MiB bodies, 300/5000 characters
    assert settings.ingest_max_body_bytes > MB + 40_000
    async with running(create_app(settings, metrics_registry=metrics_registry)) as http:
        yield http


def body(item: dict[str, Any]) -> bytes:
    return json.dumps(item, ensure_ascii=False).encode()


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


REFUSED: dict[str, bytes] = {
    "long_title": body({"title": "t" * 100_000}),
    "long_every_field": body(
        {
            "title": "t" * 5000,
            "description": "d" * 200_000,
            "url": "https://e.org/" + "p" * 100_000,
            "source": "s" * 50_000,
            "external_id": "e" * 50_000,
        }
    ),
    "one_char_1mb_title": body({"title": "a" * MB}),
    "one_char_1mb_description": body({"title": "t", "description": "a" * MB}),
    "spaces_1mb": body({"title": "t", "description": " " * MB}),
    "nfkc_expanding_char": body({"title": "\ufdfa" * 330_000}),  # 18 characters each
    "nfkc_expanding_under_raw_cap": body({"title": "\ufdfa" * 1200}),
    "combining_marks_1mb": body({"title": "e" + "\u0301" * (MB // 2)}),
    "nested_body": deep(500_000),
    "nested_field": b'{"title": ' + deep(400_000) + b"}",
    "nested_object": b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,
    "only_invisible": body({"title": "\u202e\u2066\u200b\ufeff\x00"}),
}

ACCEPTED: dict[str, tuple[dict[str, Any], str, str]] = {
    # request item -> (title, description) as they must travel on content.raw
    "nul_control_bidi": (
        {"title": "Graph\x00 neural\u202e networks\u2066", "description": "a\x07b\u200bc\x1b"},
        "Graph neural networks",
        "a bc",
    ),
    "not_normalised": (
        {"title": "\ufb01ne-tuning \uff34\uff52\uff41\uff4e\uff53 cafe\u0301"},
        "fine-tuning Trans café",
        "",
    ),
    "token_patterns": (
        {"title": "a" + "-a" * 149, "description": "_" * 2500 + "a." * 1250},
        "a" + "-a" * 149,
        "_" * 2500 + "a." * 1250,
    ),
    "whitespace_runs": (
        {"title": "x" + " " * 900 + "y", "description": "\u2028\u3000z"},
        "x y",
        "z",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
async def test_hostile_bodies_get_a_4xx(client: httpx.AsyncClient, name: str) -> None:
    content = REFUSED[name]
    single = await client.post("/v1/items", content=content, headers=JSON)
    assert 400 <= single.status_code < 500, (single.status_code, single.text[:500])
    assert single.json()["detail"], single.text[:500]
    if content.startswith(b"{"):  # the same item inside a batch: rejected there
        batch = await client.post(
            "/v1/items:batch", content=b'{"items": [' + content + b"]}", headers=JSON
        )
        assert 400 <= batch.status_code < 500 or (
            batch.status_code == 202 and batch.json()["items"][0]["status"] == "rejected"
        ), (batch.status_code, batch.text[:500])


async def test_hostile_but_valid_items_travel_normalised(
    client: httpx.AsyncClient, topics: Settings
) -> None:
    ids: dict[str, str] = {}
    for name, (item, _, _) in ACCEPTED.items():
        response = await client.post("/v1/items", content=body(item), headers=JSON)
        assert response.status_code == 202, (name, response.text[:500])
        ids[response.json()["id"]] = name
    values = await read_topic(topics, topics.topic_raw, expect=len(ids))
    items = {i.item_id: i for i in map(ContentItem.decode, values)}
    assert set(items) == set(ids)
    for item_id, name in ids.items():
        _, title, description = ACCEPTED[name]
        assert (items[item_id].title, items[item_id].description) == (title, description), name
