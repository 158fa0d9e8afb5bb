"""Kafka helpers: clients built from settings, the topic catalogue, the commit-after-ack
batch loop, the consumer worker around it and the background producer."""

from shared.kafka.batch import Output, run_batches
from shared.kafka.clients import client_options, create_consumer, create_producer
from shared.kafka.dlq import dead_letter
from shared.kafka.producer import BackgroundProducer, BrokerUnavailable, Publisher
from shared.kafka.topics import CATALOGUE, Topic, ensure_topics, topic_names
from shared.kafka.worker import ConsumerWorker, WorkerConfig

__all__ = [
    "CATALOGUE",
    "BackgroundProducer",
    "BrokerUnavailable",
    "ConsumerWorker",
    "Output",
    "Publisher",
    "Topic",
    "WorkerConfig",
    "client_options",
    "create_consumer",
    "create_producer",
    "dead_letter",
    "ensure_topics",
    "run_batches",
    "topic_names",
]
