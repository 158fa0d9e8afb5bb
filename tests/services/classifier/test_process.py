"""``python -m services.classifier`` as real processes: killed mid-stream, and two at once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from shared.messages import Classification, ContentItem
from shared.settings import Settings
from tests.services.classifier.conftest import (
    ClassifierProcess,
    classifier_settings,
    clear_item,
    collect,
    committed_total,
    produce,
    train_tiny,
    unclear_item,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ITEMS = "tagstream_classifier_items_total"


def stream(n: int) -> list[ContentItem]:
    """Confident items, with every tenth one for review."""
    return [clear_item(k) if k % 10 else unclear_item() for k in range(n)]


async def test_a_killed_instance_loses_nothing(
    topics: Settings, tmp_path: Path, processes: list[ClassifierProcess]
) -> None:
    settings = classifier_settings(
        topics,
        classifier_session_timeout_ms=6000,
        classifier_heartbeat_interval_ms=1000,
        classifier_batch_max_items=64,
    )
    train_tiny(settings, tmp_path)
    items = stream(4000)
    first = ClassifierProcess(settings, tmp_path, "first").start()
    processes.append(first)

    # the first 1000 before it starts, the rest streamed while it works
    await produce(settings, settings.topic_raw, items[:1000])
    assert await first.wait_until(ITEMS, 1, within=30) >= 1, first.logs()[-3000:]
    for start in range(1000, 2500, 250):
        await produce(settings, settings.topic_raw, items[start : start + 250])
        await asyncio.sleep(0.05)
    first.signal(signal.SIGKILL)  # mid-stream: no shutdown, no commit, no leave-group
    assert first.wait() == -signal.SIGKILL

    await produce(settings, settings.topic_raw, items[2500:])
    second = ClassifierProcess(settings, tmp_path, "second").start()
    processes.append(second)
    ids = {i.item_id for i in items}
    values = await collect(settings, settings.topic_classified, until=ids, within=60)

    decided = {Classification.decode(v).item_id for v in values}
    assert decided == ids, second.logs()[-3000:]
    assert await second.metric(ITEMS) >= 1


async def test_two_instances_share_the_partitions(
    topics: Settings, tmp_path: Path, processes: list[ClassifierProcess]
) -> None:
    settings = classifier_settings(topics, classifier_heartbeat_interval_ms=500)
    train_tiny(settings, tmp_path)
    pair = [ClassifierProcess(settings, tmp_path, name).start() for name in ("a", "b")]
    processes.extend(pair)

    # both members hold partitions before anything is produced, so both get work
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 40
    held = [0.0, 0.0]
    while loop.time() < deadline:
        held = [await p.metric("tagstream_classifier_assigned_partitions") for p in pair]
        if sum(held) == 4 and min(held) > 0:
            break
        await asyncio.sleep(0.2)
    assert sum(held) == 4, held
    assert min(held) > 0, held

    items = stream(2000)
    await produce(settings, settings.topic_raw, items)
    ids = {i.item_id for i in items}
    values = await collect(settings, settings.topic_classified, until=ids, within=60)

    assert {Classification.decode(v).item_id for v in values} == ids
    counts = [await p.metric(ITEMS) for p in pair]
    assert min(counts) > 0, counts
    assert sum(counts) >= len(ids)
    for process in pair:
        process.signal(signal.SIGTERM)
    # uvicorn re-raises SIGTERM once shut down: the exit status says "terminated"
    assert [p.wait() for p in pair] == [-signal.SIGTERM] * 2
    for process in pair:
        assert '"consumer_stopped"' in process.logs()
        assert '"classifier_stopped"' in process.logs()
    assert await committed_total(settings) == len(items)  # nothing left uncommitted
