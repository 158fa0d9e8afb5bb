"""CPU-heavy inference never starves the group heartbeats: no rebalance under load.

One real classifier process, with the production group timings, is kept busy with
full batches for ``TAGSTREAM_CHAOS_LOAD_SECONDS`` (60): records are produced straight to
``content.raw`` so that about 20,000 always wait, and every batch it fetches is a full one.
``tagstream_consumer_rebalances_total`` counts the assignments it receives: one for its
join, and none after it while the load lasts.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from shared.kafka import Output, create_producer
from shared.kafka.batch import produce_all
from shared.messages import ContentItem
from shared.ml.training import train
from shared.settings import Settings
from tests.fixtures.data import VOCAB, synthetic_rows, write_rows
from tests.fixtures.services import ServiceProcess, port, running, service_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.chaos]

LOAD_SECONDS = float(os.environ.get("TAGSTREAM_CHAOS_LOAD_SECONDS", "60"))
CHUNK = 500
# Records kept waiting: enough that every batch is a full one, few enough that the
# broker (it keeps topics in memory) holds only what the classifier gets through.
BACKLOG = 20_000


async def metric(service: ServiceProcess, name: str) -> float:
    async with httpx.AsyncClient(base_url=service.url, timeout=5) as http:
        body = (await http.get("/metrics")).text
    return sum(
        float(line.split()[-1])
        for line in body.splitlines()
        if line.startswith(name) and not line.startswith(f"{name}_created")
    )


def content(n: int, rng: random.Random) -> ContentItem:
    tag = rng.choice(sorted(VOCAB))
    words = " ".join(rng.choices(VOCAB[tag] + VOCAB["other"], k=40))
    return ContentItem(
        item_id=f"load-{n}",
        title=f"{words[:60]} {n}",
        description=words * 3,
        received_at=datetime.now(UTC),
    )


async def test_no_rebalance_while_one_classifier_works_at_capacity(
    topics: Settings, tmp_path: Path
) -> None:
    settings = topics
    train(settings, data_location=str(write_rows(tmp_path / "a.csv", synthetic_rows())))
    classifier_port = port()
    env = service_env(
        settings,
        TAGSTREAM_CLASSIFIER_PORT=classifier_port,
        TAGSTREAM_CLASSIFIER_GROUP_ID=f"classifier-{settings.topic_raw}",
    )
    classifier = ServiceProcess("classifier", env, int(classifier_port), tmp_path)
    rng = random.Random(14)
    producer = create_producer(settings)
    await producer.start()
    try:
        with running(classifier.start("/readyz")):
            await produce_all(
                producer, [Output(settings.topic_raw, b"warm", content(-1, rng).encode())]
            )
            deadline = time.monotonic() + 30
            while await metric(classifier, "tagstream_classifier_items_total") < 1:
                assert time.monotonic() < deadline, "the classifier never decided an item"
                await asyncio.sleep(0.2)
            joined = await metric(classifier, "tagstream_consumer_rebalances_total")

            start = time.monotonic()
            offered = 0
            decided = 0.0
            while time.monotonic() - start < LOAD_SECONDS:
                if offered - decided > BACKLOG:
                    decided = await metric(classifier, "tagstream_classifier_items_total") - 1
                    if offered - decided > BACKLOG:
                        await asyncio.sleep(0.1)
                    continue
                items = [content(offered + k, rng) for k in range(CHUNK)]
                await produce_all(
                    producer,
                    [Output(settings.topic_raw, i.item_id.encode(), i.encode()) for i in items],
                )
                offered += CHUNK
            decided = await metric(classifier, "tagstream_classifier_items_total") - 1
            after = await metric(classifier, "tagstream_consumer_rebalances_total")
            cpu = await metric(classifier, "process_cpu_seconds_total")
            batches = await metric(classifier, "tagstream_classifier_batch_size_count")
            in_batches = await metric(classifier, "tagstream_classifier_batch_size_sum")
    finally:
        await producer.stop()
    print(
        f"\nrebalance load: {LOAD_SECONDS:.0f} s, {offered} offered, {decided:.0f} decided"
        f" ({decided / LOAD_SECONDS:.0f}/s), classifier CPU {cpu:.0f} s,"
        f" mean batch {in_batches / max(batches, 1):.0f} items,"
        f" assignments {joined:.0f} at join, {after:.0f} after"
    )
    assert joined >= 1
    # at capacity: records always waited, so batches were full (the default is 512)
    assert decided < offered, "not at capacity: the classifier kept up with the offer"
    assert in_batches / batches > 256
    assert after == joined, f"{after - joined:.0f} rebalances under load"
