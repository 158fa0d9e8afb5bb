"""Feedback metrics, defined once on a registry the caller owns (tests pass their own)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True, slots=True)
class AccuracyRow:
    """Online accuracy of one model version in one role: gold label vs its prediction."""

    model_version: str
    role: str
    samples: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.samples if self.samples else 0.0


class FeedbackMetrics:
    """Every metric of the feedback service, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.online_accuracy = Gauge(
            "tagstream_feedback_online_accuracy",
            "Share of gold-labeled items the version (in the role) predicted correctly.",
            ["model_version", "role"],
            registry=registry,
        )
        self.online_samples = Gauge(
            "tagstream_feedback_online_samples",
            "Gold-labeled items behind tagstream_feedback_online_accuracy.",
            ["model_version", "role"],
            registry=registry,
        )
        self.labels = Counter(
            "tagstream_feedback_labels",
            "Gold labels stored (redeliveries not counted), by source.",
            ["source"],
            registry=registry,
        )
        self.conflicts = Counter(
            "tagstream_feedback_conflicts",
            "Items whose reviewers disagreed, by outcome (requeued to review, or not: "
            "the item's text or prediction is unknown).",
            ["outcome"],
            registry=registry,
        )
        self.reports = Counter(
            "tagstream_feedback_reports",
            "User reports by result (accepted, invalid, unauthorized, rate_limited, unavailable).",
            ["result"],
            registry=registry,
        )
        self.retrain_runs = Counter(
            "tagstream_feedback_retrain_runs",
            "Retraining runs by trigger (labels, drift, manual) and result.",
            ["trigger", "result"],
            registry=registry,
        )
        self.drift_score = Gauge(
            "tagstream_feedback_drift_score",
            "Out-of-vocabulary share of recent items' tokens vs the stable model.",
            registry=registry,
        )
        self.dead_letters = Counter(
            "tagstream_feedback_dead_letters",
            "Records sent to the DLQ by the feedback consumer, by topic.",
            ["topic"],
            registry=registry,
        )

    def set_accuracy(self, rows: Iterable[AccuracyRow]) -> None:
        """Replace every accuracy series (versions no longer present disappear)."""
        self.online_accuracy.clear()
        self.online_samples.clear()
        for row in rows:
            self.online_accuracy.labels(row.model_version, row.role).set(row.accuracy)
            self.online_samples.labels(row.model_version, row.role).set(row.samples)
