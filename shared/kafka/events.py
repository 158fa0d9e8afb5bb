"""Publishing ``models.events``: notifications of registry and rollout changes.

Best effort by design: the registry is the truth every consumer reads, and classifiers
also poll it, so a lost event delays a switch by one poll and nothing else. A failure
is logged and reported as False, never raised.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from aiokafka.errors import KafkaError

from shared.kafka.clients import create_producer
from shared.messages import ModelEvent
from shared.registry import ModelVersion
from shared.settings import Settings

log = structlog.get_logger(__name__)


async def publish_event(settings: Settings, event: ModelEvent, wait_seconds: float = 5.0) -> bool:
    """Send ``event`` keyed by model name and wait for the ack; True when acknowledged.

    Events are rare, so one short-lived producer per event is enough.
    """
    producer = create_producer(settings)
    try:
        async with asyncio.timeout(wait_seconds):
            await producer.start()
            key = event.model_name.encode()
            await (await producer.send(settings.topic_models, event.encode(), key=key))
    except (KafkaError, OSError, TimeoutError) as exc:
        log.warning("model_event_not_published", model_event=event.event, error=repr(exc))
        return False
    finally:
        await producer.stop()
    return True


def announce_candidate(settings: Settings, version: ModelVersion, timeout: float = 3.0) -> bool:
    """Tell ``models.events`` a candidate was registered (blocking; no event loop running)."""
    event = ModelEvent(
        event="candidate_registered",
        model_name=version.name,
        version=version.version,
        stable_version=version.parent_version,
        reason="registered by training",
        at=datetime.now(UTC),
    )
    return asyncio.run(publish_event(settings, event, timeout))
