"""End to end: the whole dataset through HTTP, a real broker, ingest and classifier processes."""

from __future__ import annotations

import asyncio
import csv
import random
from collections import Counter
from pathlib import Path

import httpx
import pytest

from shared.messages import NEEDS_REVIEW, Classification, ReviewRequest
from shared.ml import training
from shared.settings import Settings
from tests.fixtures.kafka import read_topic
from tests.fixtures.services import ServiceProcess, port, running, service_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
KEY = "flow-test-key"


async def post_all(url: str, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Post every row as one item, 16 at a time, in the given order."""
    limit = asyncio.Semaphore(16)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:

        async def post(row: dict[str, str]) -> dict[str, str]:
            async with limit:
                body = {"title": row["title"], "description": row["description"], "source": "flow"}
                response = await client.post("/v1/items", json=body)
                assert response.status_code == 202, response.text
                return dict(response.json())

        return await asyncio.gather(*(post(r) for r in rows))


async def test_every_accepted_item_gets_exactly_one_decision(
    topics: Settings, dataset_path: Path, tmp_path: Path
) -> None:
    settings = topics
    version = training.train(settings, data_location=str(dataset_path)).version
    env = service_env(
        settings,
        TAGSTREAM_INGEST_API_KEYS=KEY,
        TAGSTREAM_INGEST_PORT=port(),
        TAGSTREAM_CLASSIFIER_PORT=port(),
    )
    ingest = ServiceProcess("ingest", env, int(env["TAGSTREAM_INGEST_PORT"]), tmp_path)
    classifier = ServiceProcess("classifier", env, int(env["TAGSTREAM_CLASSIFIER_PORT"]), tmp_path)
    with running(ingest.start("/readyz"), classifier.start("/healthz")):
        with dataset_path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        random.Random(7).shuffle(rows)
        results = await post_all(ingest.url, rows)
        accepted = {r["id"] for r in results if r["status"] == "accepted"}
        assert len(accepted) == len(rows)  # the dataset has no duplicate content

        decisions = [
            Classification.decode(v)
            for v in await read_topic(
                settings, settings.topic_classified, expect=len(accepted), within=120
            )
        ]
        by_id = {d.item_id: d for d in decisions}
        assert set(by_id) == accepted
        per_version = Counter((d.item_id, d.model_version) for d in decisions)
        assert set(per_version.values()) == {1}, "an item was decided twice by one version"
        assert {d.model_version for d in decisions} == {version.version}
        approved = set(settings.approved_tags)
        assert all(d.tag in approved | {NEEDS_REVIEW} for d in decisions)
        to_review = {d.item_id for d in decisions if d.route == "review"}
        assert 0 < len(to_review) < len(accepted)
        assert all(d.tag == NEEDS_REVIEW for d in decisions if d.route == "review")

        requests = [
            ReviewRequest.decode(v)
            for v in await read_topic(
                settings, settings.topic_review, expect=len(to_review), within=60
            )
        ]
        assert {r.item_id for r in requests if r.reason != "audit"} == to_review
        audited = {r.item_id for r in requests if r.reason == "audit"}
        assert audited <= accepted - to_review  # a sample of auto-accepted items

        # the same content again: screened as a duplicate, never decided twice
        again = await post_all(ingest.url, rows[:20])
        assert {r["status"] for r in again} == {"duplicate"}
        assert [r["id"] for r in again] == [r["id"] for r in results[:20]]
        await asyncio.sleep(1)
        later = await read_topic(
            settings, settings.topic_classified, expect=len(decisions) + 1, within=3
        )
        assert len(later) == len(decisions)
