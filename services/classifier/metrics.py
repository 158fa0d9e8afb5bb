"""The classifier's Prometheus metrics, on a registry the caller owns (tests pass their own)."""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.classifier.model import ServingSet
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
        self.predictions = Counter(
            "tagstream_classifier_predictions_total",
            "Items each served model scored, by its top tag and the route it would take. "
            "While a canary runs both models score every item, so the two compare on the "
            "same items.",
            ["model_version", "role", "tag", "route"],
            registry=registry,
        )
        self.agreement = Counter(
            "tagstream_classifier_agreement_total",
            "Items on which the canary's top tag agreed or not with the stable model's.",
            ["model_version", "role", "agreement"],
            registry=registry,
        )
        self.inference_errors = Counter(
            "tagstream_classifier_inference_errors_total",
            "Items a served model failed to score.",
            ["model_version", "role"],
            registry=registry,
        )
        self.canary_weight = Gauge(
            "tagstream_classifier_canary_weight",
            "Share of items the canary decides (0 in shadow mode), as this instance serves it.",
            ["model_version"],
            registry=registry,
        )
        self.shadow = Gauge(
            "tagstream_classifier_shadow_mode",
            "1 while the canary runs in shadow mode (scores every item, decides none).",
            registry=registry,
        )
        self.stage_items = Counter(
            "tagstream_classifier_stage_items_total",
            "Items decided, by the cascade stage that decided them (1: the fast model was "
            "sure; 2: the sentence-encoder model re-decided what stage 1 was unsure of) "
            "and the route, per model version and role.",
            ["model_version", "role", "stage", "route"],
            registry=registry,
        )
        self.stage2_seconds = Histogram(
            "tagstream_classifier_stage2_seconds",
            "Stage-2 inference time per batch (tokenise, encode, head), per served model.",
            ["model_version", "role"],
            buckets=INFERENCE_BUCKETS,
            registry=registry,
        )
        self.stage2_errors = Counter(
            "tagstream_classifier_stage2_errors_total",
            "Items stage 2 failed to re-decide; stage 1's decision (review) stood.",
            ["model_version", "role"],
            registry=registry,
        )
        self.inference_seconds = Histogram(
            "tagstream_classifier_inference_seconds",
            "Model inference time per batch, per served model.",
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
        self.rebalances = Counter(
            "tagstream_consumer_rebalances_total",
            "Partition assignments this instance received from its consumer group (one per "
            "group generation it joined; the first join counts). More than one per consumer "
            "start means rebalances: members joining, leaving or missing heartbeats.",
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
            "From ingest acceptance (received_at) to the decision, per item, by the model "
            "version and role that decided it.",
            ["model_version", "role"],
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

    def record_batch(self, size: int, result: BatchResult, seconds: float) -> None:
        """Everything a committed batch tells: sizes, routes, latencies, dead letters."""
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        for stats in result.models:
            version, role = stats.model_version, stats.role
            self.inference_seconds.labels(version, role).observe(stats.inference_seconds)
            if stats.stage2_items:
                self.stage2_seconds.labels(version, role).observe(stats.stage2_seconds)
            if stats.stage2_errors:
                self.stage2_errors.labels(version, role).inc(stats.stage2_errors)
            for (tag, route), count in stats.predictions.items():
                self.predictions.labels(version, role, tag, route).inc(count)
            if stats.errors:
                self.inference_errors.labels(version, role).inc(stats.errors)
            if stats.agree:
                self.agreement.labels(version, role, "agree").inc(stats.agree)
            if stats.disagree:
                self.agreement.labels(version, role, "disagree").inc(stats.disagree)
        tally = Tally((d.route, d.tag, d.model_version, d.role) for d in result.decided)
        for labels, count in tally.items():
            self.items.labels(*labels).inc(count)
        stages = Tally((d.model_version, d.role, str(d.stage), d.route) for d in result.decided)
        for stage_labels, count in stages.items():
            self.stage_items.labels(*stage_labels).inc(count)
        for decided in result.decided:
            self.end_to_end_latency.labels(decided.model_version, decided.role).observe(
                decided.latency_seconds
            )
        for (stage, kind), count in Tally(
            (r.stage, r.reason_kind.value) for r in result.rejected
        ).items():
            self.dlq.labels(stage, kind).inc(count)
        self.last_batch_timestamp.set(time.time())

    def serving(
        self, serving: ServingSet, previous: ServingSet | None, tags: Iterable[str] = ()
    ) -> None:
        """Which versions serve in which role; zeroed counters for each new one.

        A series that exists from the start (at 0) lets ``increase()`` see the first
        errors and agreements; one that appears with its first increment hides it.
        """
        now = {(m.name, m.role) for m in serving.models}
        before = {(m.name, m.role) for m in previous.models} if previous is not None else set()
        for version, role in before - now:
            self.model_info.remove(version, role)
        for version, role in now:
            self.model_info.labels(version, role).set(1)
            self.inference_errors.labels(version, role)
            self.inference_seconds.labels(version, role)
            for tag in (*tags, "unapproved"):
                for route in ("auto", "review"):
                    self.predictions.labels(version, role, tag, route)
        gone = previous.canary if previous is not None else None
        if gone is not None and (serving.canary is None or serving.canary.name != gone.name):
            self.canary_weight.remove(gone.name)
        if serving.canary is not None:
            for agreement in ("agree", "disagree"):
                self.agreement.labels(serving.canary.name, "canary", agreement)
            weight = 0.0 if serving.shadow else serving.canary_weight
            self.canary_weight.labels(serving.canary.name).set(weight)
        self.shadow.set(1 if serving.shadow else 0)

    def set_lag(self, lag: Mapping[int, int], assigned: Iterable[int]) -> None:
        """Lag of the assigned partitions; partitions no longer held are dropped."""
        held = {str(p) for p in assigned}
        for gone in self._lag_partitions - held:
            self.consumer_lag.remove(gone)
        for partition, value in lag.items():
            self.consumer_lag.labels(str(partition)).set(value)
        self._lag_partitions = held & ({str(p) for p in lag} | self._lag_partitions)
        self.assigned_partitions.set(len(held))
