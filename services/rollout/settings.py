"""Settings of the rollout controller: the shared base plus ``TAGSTREAM_ROLLOUT_*`` fields."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from services.rollout.analysis import AnalysisConfig
from shared.security import check_production_keys
from shared.settings import Settings, split_csv

SHADOW = "shadow"


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a rollout: the canary's share of items, or shadow mode."""

    label: str
    weight: float
    shadow: bool


def parse_step(value: str) -> Step:
    """``shadow``, or a percentage such as ``10`` or ``10%`` (0 < p <= 100)."""
    text = value.strip().lower()
    if text == SHADOW:
        return Step(SHADOW, 0.0, True)
    try:
        percent = float(text.rstrip("%"))
    except ValueError:
        raise ValueError(f"a step is 'shadow' or a percentage, not {value!r}") from None
    if not 0 < percent <= 100 or not math.isfinite(percent):
        raise ValueError(f"a step's percentage must be in (0, 100], not {value!r}")
    return Step(f"{percent:g}%", percent / 100, False)


class RolloutSettings(Settings):
    """What ``python -m services.rollout`` reads from ``TAGSTREAM_*`` at start-up."""

    rollout_host: str = Field("127.0.0.1", description="Interface the HTTP server listens on.")
    rollout_port: int = Field(8005, ge=1, le=65535, description="Port of the HTTP server.")
    rollout_admin_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (),
        description="Comma-separated admin API keys (Bearer tokens) for the rollout API. "
        "Hashed at start-up; required in production. None set: every call is 401.",
    )
    prometheus_url: str | None = Field(
        None,
        description="Base URL of the Prometheus server whose metrics decide rollouts, e.g. "
        "http://127.0.0.1:9090. Unset: rollouts start paused and never advance.",
    )
    rollout_steps: Annotated[tuple[str, ...], NoDecode] = Field(
        ("shadow", "10", "25", "50", "100"),
        description="Comma-separated steps: 'shadow' (the canary scores every item, decides "
        "none) or the percentage of items the canary decides. Passing the last promotes.",
    )
    rollout_interval_seconds: float = Field(
        60.0, gt=0, description="How long each step runs before its analysis."
    )
    rollout_window_seconds: int | None = Field(
        None,
        ge=1,
        description="PromQL range of each analysis; default the interval. Must cover at "
        "least four scrapes of the classifier.",
    )
    rollout_failure_limit: int = Field(
        2, ge=1, description="Failed analyses after which the canary is rolled back."
    )
    rollout_inconclusive_limit: int = Field(
        3,
        ge=1,
        description="Inconclusive analyses (no data, NaN, failed query, no canary traffic) "
        "after which the canary is rolled back; counted apart from failures.",
    )
    rollout_require_labels: bool = Field(
        False,
        description="Hold the final promotion until the paired accuracy test proves the "
        "canary no worse than the margin (docs/rollout.md: how many labels that takes). "
        "Off: that check only fails a canary shown worse, and is skipped below its sample.",
    )
    rollout_auto_start: bool = Field(
        True,
        description="Start the rollout of a candidate whose offline gate passed against the "
        "stable version, and mark one whose gate failed 'rejected', with no command typed.",
    )
    rollout_auto_start_poll_seconds: float = Field(
        30.0,
        gt=0,
        description="How often the registry is checked for gated candidates, besides each "
        "candidate_registered event (a missed event waits at most this long).",
    )
    rollout_tick_seconds: float = Field(
        1.0, gt=0, description="How often the controller looks whether an analysis is due."
    )
    rollout_query_timeout_seconds: float = Field(
        5.0, gt=0, description="Timeout of one Prometheus query."
    )
    rollout_min_predictions: int = Field(
        50, ge=0, description="Canary predictions a window needs; fewer is inconclusive."
    )
    rollout_max_error_rate_increase: float = Field(
        0.01, ge=0, description="Largest canary minus stable inference error rate."
    )
    rollout_max_latency_ratio: float = Field(
        1.5, ge=1, description="Largest canary / stable p99 inference latency."
    )
    rollout_latency_slack_seconds: float = Field(
        0.005, ge=0, description="p99 latency the canary may add whatever the ratio."
    )
    rollout_max_review_share_increase: float = Field(
        0.10, ge=0, le=1, description="Largest canary minus stable share routed to review."
    )
    rollout_max_prediction_shift: float = Field(
        0.15, ge=0, le=1, description="Largest total variation distance between tag shares."
    )
    rollout_min_agreement: float = Field(
        0.80, ge=0, le=1, description="Smallest share of items where both models agree."
    )
    rollout_min_labeled: int = Field(
        30,
        ge=1,
        description="Gold-labelled items answered by both versions before the paired "
        "accuracy check judges.",
    )
    rollout_max_accuracy_drop: float = Field(
        0.05, ge=0, le=1, description="Non-inferiority margin of online accuracy."
    )

    @field_validator("rollout_admin_keys", "rollout_steps", mode="before")
    @classmethod
    def _parse_lists(cls, value: object) -> object:
        return split_csv(value)

    @field_validator("rollout_steps")
    @classmethod
    def _check_steps(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one rollout step is needed")
        steps = [parse_step(v) for v in value]
        weights = [s.weight for s in steps if not s.shadow]
        shadows = [s.shadow for s in steps]
        if shadows != sorted(shadows, reverse=True):
            raise ValueError("shadow steps must come before the percentage steps")
        if weights != sorted(weights):
            raise ValueError("percentage steps must not decrease")
        return value

    @model_validator(mode="after")
    def _refuse_missing_keys_in_production(self) -> RolloutSettings:
        if self.environment == "production":
            check_production_keys(
                self.rollout_admin_keys, "TAGSTREAM_ROLLOUT_ADMIN_KEYS", "rollout admin keys"
            )
        return self

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(parse_step(v) for v in self.rollout_steps)

    @property
    def step_labels(self) -> tuple[str, ...]:
        return tuple(step.label for step in self.steps)

    @property
    def window_seconds(self) -> int:
        if self.rollout_window_seconds is not None:
            return self.rollout_window_seconds
        return max(1, math.ceil(self.rollout_interval_seconds))

    @property
    def analysis(self) -> AnalysisConfig:
        return AnalysisConfig(
            min_predictions=self.rollout_min_predictions,
            max_error_rate_increase=self.rollout_max_error_rate_increase,
            max_latency_ratio=self.rollout_max_latency_ratio,
            latency_slack_seconds=self.rollout_latency_slack_seconds,
            max_review_share_increase=self.rollout_max_review_share_increase,
            max_prediction_shift=self.rollout_max_prediction_shift,
            min_agreement=self.rollout_min_agreement,
            min_labeled=self.rollout_min_labeled,
            max_accuracy_drop=self.rollout_max_accuracy_drop,
        )
