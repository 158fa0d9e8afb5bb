"""The classifier in-process against the real broker and a real registry."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.classifier.app import create_app
from services.classifier.consumer import ClassifierRunner
from services.classifier.metrics import ClassifierMetrics
from shared.kafka import Output
from shared.kafka.batch import Record
from shared.messages import NEEDS_REVIEW, Classification, DeadLetter, ReviewRequest
from shared.ml.training import train
from shared.registry import ModelRegistry
from shared.settings import Settings
from tests.fixtures.data import synthetic_rows, write_rows
from tests.fixtures.kafka import eventually
from tests.services.classifier.conftest import (
    classifier_settings,
    clear_item,
    collect,
    committed_total,
    item,
    produce,
    train_tiny,
    unclear_item,
)

pytestmark = pytest.mark.kafka


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://classifier")


def metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#") and line[len(name)] in "{ "
    )


async def test_every_item_is_decided_once_and_poison_goes_to_the_dlq(
    topics: Settings, tmp_path: Path
) -> None:
    settings = classifier_settings(topics)
    version = train_tiny(settings, tmp_path)
    items = [clear_item(n) for n in range(300)] + [unclear_item() for _ in range(30)]
    random.Random(7).shuffle(items)
    poison = [
        b"{not json",
        json.dumps({**json.loads(item("v2").encode()), "schema_version": 2}).encode(),
        json.dumps(
            {k: v for k, v in json.loads(item("nt").encode()).items() if k != "title"}
        ).encode(),
    ]
    await produce(settings, settings.topic_raw, [*items[:150], *poison, *items[150:]])
    ids = {i.item_id for i in items}
    unsure = {i.item_id for i in items if i.title == "Hello world"}

    app = create_app(settings, metrics_registry=CollectorRegistry())
    async with app.router.lifespan_context(app), client(app) as http:
        classified = await collect(settings, settings.topic_classified, until=ids)
        letters = await collect(settings, settings.topic_dlq, count=3, within=10)
        requests = await collect(settings, settings.topic_review, until=unsure, within=10)
        ready = await http.get("/readyz")
        metrics = (await http.get("/metrics")).text
    total_committed = await committed_total(settings)

    decisions = [Classification.decode(v) for v in classified]
    assert sorted(d.item_id for d in decisions) == sorted(ids)  # exactly one each
    assert {d.item_id for d in decisions if d.tag == NEEDS_REVIEW} == unsure
    assert {d.item_id for d in decisions if d.route == "auto"} == ids - unsure
    reviews = [ReviewRequest.decode(v) for v in requests]
    unsure_reviews = [r for r in reviews if r.reason != "audit"]
    assert sorted(r.item_id for r in unsure_reviews) == sorted(unsure)
    # the audit sample: auto-accepted items, also sent to review, marked as audit
    assert {r.item_id for r in reviews if r.reason == "audit"} <= ids - unsure
    dead = [DeadLetter.decode(v) for v in letters]
    assert sorted(d.original_value for d in dead) == sorted(poison)
    assert {d.stage for d in dead} == {"classifier.decode"}

    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "model_loaded": True,
        "consumer_running": True,
        "broker_reachable": True,
        "making_progress": True,
        "schema": True,
    }
    assert metric(metrics, "tagstream_classifier_items_total") == 330
    assert metric(metrics, "tagstream_classifier_dlq_total") == 3
    assert metric(metrics, "tagstream_classifier_model_info") == 1
    assert f'model_version="{version.version}"' in metrics
    assert metric(metrics, "tagstream_classifier_batch_size_count") >= 1
    assert metric(metrics, "tagstream_classifier_end_to_end_latency_seconds_count") == 330
    assert metric(metrics, "tagstream_classifier_consumer_lag") == 0
    # shut down cleanly: everything processed was committed
    assert total_committed == 333


async def test_unready_without_a_model_then_serves_the_one_registered(
    topics: Settings, tmp_path: Path
) -> None:
    settings = classifier_settings(topics)
    waiting = clear_item(0)
    await produce(settings, settings.topic_raw, [waiting])

    app = create_app(settings, metrics_registry=CollectorRegistry())
    async with app.router.lifespan_context(app), client(app) as http:
        await asyncio.sleep(0.5)  # several registry polls
        before = await http.get("/readyz")
        assert (await http.get("/healthz")).status_code == 200
        assert await collect(settings, settings.topic_classified, count=1, within=1) == []

        await asyncio.to_thread(train_tiny, settings, tmp_path)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        after = await http.get("/readyz")
        while after.status_code != 200 and loop.time() < deadline:
            await asyncio.sleep(0.1)
            after = await http.get("/readyz")
        (decision,) = await collect(settings, settings.topic_classified, count=1)

    assert before.status_code == 503
    assert before.json()["checks"]["model_loaded"] is False
    assert after.status_code == 200, after.text
    assert Classification.decode(decision).item_id == waiting.item_id


async def test_lag_is_reported_and_a_stuck_consumer_is_unready(
    topics: Settings, tmp_path: Path
) -> None:
    settings = classifier_settings(
        topics, classifier_stuck_after_seconds=1.0, classifier_batch_max_items=10
    )
    train_tiny(settings, tmp_path)
    await produce(settings, settings.topic_raw, [clear_item(n) for n in range(50)])
    metrics = ClassifierMetrics(CollectorRegistry())
    runner = ClassifierRunner(settings, metrics)
    gate = asyncio.Event()
    handle = runner._handle

    async def held(records: Sequence[Record]) -> Sequence[Output]:
        await gate.wait()  # the batch never finishes until the test says so
        return await handle(records)

    runner._handle = held  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        stuck = await eventually(runner.readiness, lambda c: not c.get("making_progress", True))
        waiting = lag(metrics)
        gate.set()
        recovered = await eventually(runner.readiness, lambda c: all(c.values()))

        async def current_lag() -> float:
            return lag(metrics)

        drained = await eventually(current_lag, lambda value: value == 0)  # refreshed each second
    finally:
        stop.set()
        await task
    assert stuck == {
        "model_loaded": True,
        "consumer_running": True,
        "broker_reachable": True,
        "making_progress": False,
    }
    assert waiting == 50  # nothing committed yet: highwater - committed over the partitions
    assert all(recovered.values())
    assert drained == 0


def lag(metrics: ClassifierMetrics) -> float:
    sample = metrics.registry.get_sample_value
    return sum(
        sample("tagstream_classifier_consumer_lag", {"partition": str(p)}) or 0 for p in range(4)
    )


async def test_a_promoted_version_is_served_without_a_restart(
    topics: Settings, tmp_path: Path
) -> None:
    settings = classifier_settings(topics)
    first = train_tiny(settings, tmp_path)
    data = write_rows(tmp_path / "other.csv", synthetic_rows(per_tag=40, seed=3))
    second = (await asyncio.to_thread(train, settings, data_location=str(data))).version
    assert second.version != first.version

    app = create_app(settings, metrics_registry=CollectorRegistry())
    runner: ClassifierRunner = app.state.runner
    async with app.router.lifespan_context(app), client(app) as http:
        before = clear_item(0)
        await produce(settings, settings.topic_raw, [before])
        await collect(settings, settings.topic_classified, count=1)

        with ModelRegistry.open(settings) as registry:
            registry.promote(second.version, reason="test")

        async def serving() -> str | None:
            return runner.model.name if runner.model else None

        assert await eventually(serving, lambda name: name == second.version) == second.version
        after = clear_item(1)
        await produce(settings, settings.topic_raw, [after])
        values = await collect(settings, settings.topic_classified, count=2)
        metrics = (await http.get("/metrics")).text

    versions = {d.item_id: d.model_version for d in map(Classification.decode, values)}
    assert versions == {before.item_id: first.version, after.item_id: second.version}
    info = [
        line for line in metrics.splitlines() if line.startswith("tagstream_classifier_model_info{")
    ]
    assert info == [
        f'tagstream_classifier_model_info{{model_version="{second.version}",role="stable"}} 1.0'
    ]
