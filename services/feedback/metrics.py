"""Feedback metrics, defined once on a registry the caller owns (tests pass their own)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.proportions import one_sided_z, wilson_interval


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


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One version's auto-accepted items in the audit sample: gold-labelled, and right."""

    model_version: str
    samples: int
    correct: int


@dataclass(frozen=True, slots=True)
class PairedRow:
    """Gold-labelled items a stable and a canary version both answered, by who was right."""

    stable_version: str
    canary_version: str
    both_correct: int
    canary_only: int
    stable_only: int
    neither_correct: int

    def outcomes(self) -> dict[str, int]:
        """The ``outcome`` label values the rollout's paired check reads."""
        return {
            "both_correct": self.both_correct,
            "canary_only": self.canary_only,
            "stable_only": self.stable_only,
            "neither_correct": self.neither_correct,
        }


class FeedbackMetrics:
    """Every metric of the feedback service, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.online_accuracy = Gauge(
            "tagstream_feedback_online_accuracy",
            "Share of gold-labeled items the version (in the role) predicted correctly. "
            "Mostly items routed to review (the least confident): far below the precision "
            "of auto-accepted items; see tagstream_feedback_audit_precision for that.",
            ["model_version", "role"],
            registry=registry,
        )
        self.online_samples = Gauge(
            "tagstream_feedback_online_samples",
            "Gold-labeled items behind tagstream_feedback_online_accuracy.",
            ["model_version", "role"],
            registry=registry,
        )
        self.audit_samples = Gauge(
            "tagstream_feedback_audit_samples",
            "Auto-accepted items of the version in the audit sample with a gold label.",
            ["model_version"],
            registry=registry,
        )
        self.audit_precision = Gauge(
            "tagstream_feedback_audit_precision",
            "Precision of the version's auto-accepted items, from the audit sample only.",
            ["model_version"],
            registry=registry,
        )
        self.audit_precision_lower = Gauge(
            "tagstream_feedback_audit_precision_lower",
            "One-sided Wilson lower bound of tagstream_feedback_audit_precision.",
            ["model_version"],
            registry=registry,
        )
        self.audit_precision_upper = Gauge(
            "tagstream_feedback_audit_precision_upper",
            "One-sided Wilson upper bound of tagstream_feedback_audit_precision.",
            ["model_version"],
            registry=registry,
        )
        self.target_precision = Gauge(
            "tagstream_feedback_target_precision",
            "TAGSTREAM_TARGET_PRECISION: what auto-accepted items must reach (for alerts).",
            registry=registry,
        )
        self.audit_min_samples = Gauge(
            "tagstream_feedback_audit_min_samples",
            "TAGSTREAM_FEEDBACK_AUDIT_MIN_SAMPLES: audited items before precision alerts.",
            registry=registry,
        )
        self.paired_labels = Gauge(
            "tagstream_feedback_paired_labels",
            "Gold-labeled items a stable and a canary version both answered, by outcome "
            "(both_correct, canary_only, stable_only, neither_correct).",
            ["stable_version", "canary_version", "outcome"],
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
            "User reports by result (accepted, invalid, unauthorized, forbidden, rate_limited, "
            "unavailable).",
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

    def set_audit_precision(self, rows: Iterable[AuditRow], *, confidence: float) -> None:
        """Replace the audit precision series; bounds one-sided at ``confidence``."""
        z = one_sided_z(confidence)
        gauges = (
            self.audit_samples,
            self.audit_precision,
            self.audit_precision_lower,
            self.audit_precision_upper,
        )
        for gauge in gauges:
            gauge.clear()
        for row in rows:
            if row.samples <= 0:
                continue
            lower, upper = wilson_interval(row.correct, row.samples, z)
            self.audit_samples.labels(row.model_version).set(row.samples)
            self.audit_precision.labels(row.model_version).set(row.correct / row.samples)
            self.audit_precision_lower.labels(row.model_version).set(lower)
            self.audit_precision_upper.labels(row.model_version).set(upper)

    def set_paired(self, rows: Iterable[PairedRow]) -> None:
        """Replace the paired counts (pairs without labels have no series)."""
        self.paired_labels.clear()
        for row in rows:
            for outcome, count in row.outcomes().items():
                self.paired_labels.labels(row.stable_version, row.canary_version, outcome).set(
                    count
                )
