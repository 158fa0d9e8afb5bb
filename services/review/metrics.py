"""Review metrics, defined once on a registry the caller owns (tests pass their own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DECISION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
#: Ingest to human decision: minutes when reviewers keep up, hours or days when not.
HUMAN_LATENCY_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14_400, 43_200, 86_400, 259_200, 604_800)


class ReviewMetrics:
    """Every metric of the review service, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.queue_depth = Gauge(
            "tagstream_review_queue_depth",
            "Items waiting for a label (claimed or not).",
            registry=registry,
        )
        self.oldest_age = Gauge(
            "tagstream_review_oldest_item_age_seconds",
            "Age of the oldest waiting item since it was received; 0 when the queue is empty.",
            registry=registry,
        )
        self.reviewers = Gauge(
            "tagstream_review_reviewers",
            "Reviewers with at least one label in force.",
            registry=registry,
        )
        self.doubly_labeled = Gauge(
            "tagstream_review_doubly_labeled_items",
            "Items labeled by two or more reviewers (TAGSTREAM_REVIEW_LABELS_PER_ITEM >= 2).",
            registry=registry,
        )
        self.agreement = Gauge(
            "tagstream_review_agreement",
            "Share of doubly-labeled items whose labels all match; meaningful only while "
            "tagstream_review_doubly_labeled_items > 0.",
            registry=registry,
        )
        self.labels = Counter(
            "tagstream_review_labels",
            "Labels produced to feedback.labels, by source and audit flag "
            "(labels per minute = rate of this).",
            ["source", "audit"],
            registry=registry,
        )
        self.decision_seconds = Histogram(
            "tagstream_review_decision_seconds",
            "Reviewer's time from claim to label.",
            buckets=DECISION_BUCKETS,
            registry=registry,
        )
        self.audit_labels = Counter(
            "tagstream_review_audit_labels",
            "Labels of auto-accepted audit items, by whether they matched the model's tag "
            "(audit precision = match=true / all).",
            ["match"],
            registry=registry,
        )
        self.human_decisions = Counter(
            "tagstream_review_human_decisions",
            "Human decisions produced to content.classified (one per label), by whether the "
            "reviewer chose the model's top tag (agrees=false: the person overrode the model).",
            ["agrees"],
            registry=registry,
        )
        self.human_decision_latency = Histogram(
            "tagstream_review_human_decision_latency_seconds",
            "From ingest acceptance of an item to the human decision on it.",
            buckets=HUMAN_LATENCY_BUCKETS,
            registry=registry,
        )
        self.claims = Counter(
            "tagstream_review_claims",
            "Claim requests by result (claimed, held, empty).",
            ["result"],
            registry=registry,
        )
        self.logins = Counter(
            "tagstream_review_logins",
            "Web login attempts by result (ok, failed, throttled); a rise of failed or "
            "throttled is someone guessing passwords.",
            ["result"],
            registry=registry,
        )
        self.requests_stored = Counter(
            "tagstream_review_requests",
            "Review requests consumed, by result (stored, duplicate, dead_lettered).",
            ["result"],
            registry=registry,
        )

    def label_relayed(self, payload: dict[str, object]) -> None:
        """Count one label the relay produced (metrics follow what reached Kafka)."""
        audit = bool(payload.get("audit", False))
        self.labels.labels(
            source=str(payload.get("source", "reviewer")), audit=str(audit).lower()
        ).inc()
        seconds = payload.get("decision_seconds")
        if isinstance(seconds, int | float):
            self.decision_seconds.observe(float(seconds))
        if audit:
            match = payload.get("tag") == payload.get("predicted_tag")
            self.audit_labels.labels(match=str(match).lower()).inc()

    def decision_relayed(self, payload: dict[str, object]) -> None:
        """Count one human decision the relay produced to content.classified."""
        agrees = payload.get("tag") == payload.get("predicted_tag")
        self.human_decisions.labels(agrees=str(agrees).lower()).inc()
        latency_ms = payload.get("latency_ms")
        if isinstance(latency_ms, int | float):
            self.human_decision_latency.observe(float(latency_ms) / 1000)
