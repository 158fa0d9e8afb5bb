"""Creating tagstream's topics (the embedded default; Strimzi declares them in Kubernetes)."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.kafka.clients import client_options
from shared.settings import Settings


async def ensure_topics(settings: Settings, topics: tuple[str, ...] | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in (topics or settings.topics) if t not in existing]
        if missing:
            specs = [
                NewTopic(t, settings.kafka_partitions, settings.kafka_replication_factor)
                for t in missing
            ]
            # another process may create them first: that is what we wanted
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(specs)
        return missing
    finally:
        await admin.close()
