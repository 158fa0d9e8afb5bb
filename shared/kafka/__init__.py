"""Kafka helpers: clients built from settings, topics, the commit-after-ack batch loop."""

from shared.kafka.batch import Output, run_batches
from shared.kafka.clients import client_options, create_consumer, create_producer
from shared.kafka.dlq import dead_letter
from shared.kafka.topics import ensure_topics

__all__ = [
    "Output",
    "client_options",
    "create_consumer",
    "create_producer",
    "dead_letter",
    "ensure_topics",
    "run_batches",
]
