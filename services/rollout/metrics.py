"""The rollout controller's metrics, on a registry the caller owns (tests pass their own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.rollout.analysis import CheckResult
from services.rollout.repository import Rollout
from services.rollout.tables import STATES


class RolloutMetrics:
    """Every metric the controller exports, defined once."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.canary_weight = Gauge(
            "tagstream_rollout_canary_weight",
            "Share of items the canary decides (0 in shadow, 1 once promoted).",
            ["model_version"],
            registry=registry,
        )
        self.phase = Gauge(
            "tagstream_rollout_phase",
            "1 for the rollout's current phase (shadow, canary, paused, promoted, rolled_back).",
            ["model_version", "phase"],
            registry=registry,
        )
        self.step = Gauge(
            "tagstream_rollout_step",
            "Index of the rollout's current step (0 = first).",
            ["model_version"],
            registry=registry,
        )
        self.analyses = Counter(
            "tagstream_rollout_analysis",
            "Analysis results by check and verdict (pass, fail, inconclusive, skipped).",
            ["check", "verdict"],
            registry=registry,
        )
        self.rollouts = Counter(
            "tagstream_rollout_rollouts",
            "Finished rollouts by outcome (promoted, rolled_back).",
            ["outcome"],
            registry=registry,
        )
        self.prometheus_up = Gauge(
            "tagstream_rollout_prometheus_up",
            "1 when the Prometheus server that decides rollouts answered its last query.",
            registry=registry,
        )
        for outcome in ("promoted", "rolled_back"):
            self.rollouts.labels(outcome)

    def show(self, rollout: Rollout) -> None:
        version = rollout.version
        for phase in STATES:
            self.phase.labels(version, phase).set(1 if phase == rollout.state else 0)
        self.canary_weight.labels(version).set(rollout.weight)
        self.step.labels(version).set(rollout.step_index)

    def record(self, results: list[CheckResult]) -> None:
        for result in results:
            self.analyses.labels(result.check, result.verdict).inc()
