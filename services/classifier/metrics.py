"""The classifier's Prometheus metrics, on a registry the caller owns (tests pass their own)."""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.classifier.model import LoadedModel
from services.classifier.service import BatchResult

# Per batch: a batch of 512 dataset texts takes a few milliseconds.
INFERENCE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
# The objective is "well under 100 ms per item end to end".
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ClassifierMetrics:
    """Every metric the classifier exports, defined once."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._lag_partitions: set[str] = set()
        self.items = Counter(
            "tagstream_classifier_items_total",
            "Items decided, by route (auto|review), emitted tag, model version and role.",
            ["route", "tag", "model_version", "role"],
            registry=registry,
        )
        self.inference_seconds = Histogram(
            "tagstream_classifier_inference_seconds",
            "Model inference time per batch.",
            ["model_version", "role"],
            buckets=INFERENCE_BUCKETS,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "tagstream_classifier_batch_duration_seconds",
            "Time per batch from fetched to committed: decode, inference, produce, acks.",
            buckets=INFERENCE_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "tagstream_classifier_batch_size",
            "Records per micro-batch.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "tagstream_classifier_consumer_lag",
            "Records on the input topic not yet committed, per assigned partition.",
            ["partition"],
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "tagstream_classifier_assigned_partitions",
            "Input partitions this instance holds in its consumer group.",
            registry=registry,
        )
        self.dlq = Counter(
            "tagstream_classifier_dlq_total",
            "Records sent to the dead-letter topic, by stage and kind of reason.",
            ["stage", "reason_kind"],
            registry=registry,
        )
        self.errors = Counter(
            "tagstream_classifier_errors_total",
            "Failures of the service itself (batch retried, model load failed, ...).",
            ["kind"],
            registry=registry,
        )
        self.end_to_end_latency = Histogram(
            "tagstream_classifier_end_to_end_latency_seconds",
            "From ingest acceptance (received_at) to the decision, per item.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.model_info = Gauge(
            "tagstream_classifier_model_info",
            "1 for each model version being served, by role.",
            ["model_version", "role"],
            registry=registry,
        )
        self.last_batch_timestamp = Gauge(
            "tagstream_classifier_last_batch_timestamp_seconds",
            "Unix time of the last committed batch.",
            registry=registry,
        )

    def record_batch(
        self, model: LoadedModel, size: int, result: BatchResult, seconds: float
    ) -> None:
        """Everything a committed batch tells: sizes, routes, latencies, dead letters."""
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        if result.items_scored or result.inference_seconds:
            self.inference_seconds.labels(model.name, model.role).observe(result.inference_seconds)
        tally = Tally((d.route, d.tag) for d in result.decided)
        for (route, tag), count in tally.items():
            self.items.labels(route, tag, model.name, model.role).inc(count)
        for decided in result.decided:
            self.end_to_end_latency.observe(decided.latency_seconds)
        for (stage, kind), count in Tally(
            (r.stage, r.reason_kind) for r in result.rejected
        ).items():
            self.dlq.labels(stage, kind).inc(count)
        self.last_batch_timestamp.set(time.time())

    def serving(self, model: LoadedModel, previous: LoadedModel | None) -> None:
        if previous is not None and previous.name != model.name:
            self.model_info.remove(previous.name, previous.role)
        self.model_info.labels(model.name, model.role).set(1)

    def set_lag(self, lag: Mapping[int, int], assigned: Iterable[int]) -> None:
        """Lag of the assigned partitions; partitions no longer held are dropped."""
        held = {str(p) for p in assigned}
        for gone in self._lag_partitions - held:
            self.consumer_lag.remove(gone)
        for partition, value in lag.items():
            self.consumer_lag.labels(str(partition)).set(value)
        self._lag_partitions = held & ({str(p) for p in lag} | self._lag_partitions)
        self.assigned_partitions.set(len(held))
