"""models.events publishing: acknowledged on a real broker, a quiet False without one."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from shared.kafka.events import announce_candidate, publish_event
from shared.messages import ModelEvent
from shared.registry import ModelStatus, ModelVersion
from shared.registry.models import ArtifactRef
from shared.settings import Settings
from tagstream.local.broker import free_port
from tests.fixtures.kafka import read_topic

VERSION = ModelVersion(
    version="vabc",
    name="tagstream-tagger",
    status=ModelStatus.CANDIDATE,
    created_at=datetime.now(UTC),
    data_hash="d",
    params={},
    metrics={},
    thresholds={},
    classes=["a", "b"],
    parent_version="vold",
    model_card="#",
    artifacts={"model.onnx": ArtifactRef(name="model.onnx", sha256="0" * 64, size_bytes=1)},
)


@pytest.mark.kafka
async def test_an_event_is_published_keyed_by_model_name(topics: Settings) -> None:
    event = ModelEvent(
        event="canary_weight_changed",
        model_name="tagstream-tagger",
        version="vabc",
        stable_version="vold",
        canary_version="vabc",
        canary_weight=0.25,
        at=datetime.now(UTC),
    )

    assert await publish_event(topics, event)

    (value,) = await read_topic(topics, topics.topic_models, expect=1)
    assert ModelEvent.decode(value) == event


@pytest.mark.kafka
async def test_a_registered_candidate_is_announced(topics: Settings) -> None:
    assert await asyncio.to_thread(announce_candidate, topics, VERSION)

    (value,) = await read_topic(topics, topics.topic_models, expect=1)
    event = ModelEvent.decode(value)
    assert (event.event, event.version, event.stable_version) == (
        "candidate_registered",
        "vabc",
        "vold",
    )


def test_without_a_broker_announcing_is_false_and_quick() -> None:
    settings = Settings(environment="test", kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    started = time.monotonic()

    assert announce_candidate(settings, VERSION, timeout=3.0) is False
    assert time.monotonic() - started < 10
