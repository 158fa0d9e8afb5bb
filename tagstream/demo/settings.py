"""Settings of ``tagstream demo``: the shared base plus ``TAGSTREAM_DEMO_*`` fields.

The defaults are the full run (a newcomer watching the loop at a human pace, about
twenty minutes); ``--fast`` replaces every default that was not set in the environment
by the values of ``FAST`` (a few minutes on two cores). A variable that is set wins in
both cases, so a test can shorten the stream further.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from shared.settings import Settings, split_csv


class DemoSettings(Settings):
    """What ``tagstream demo`` reads from ``TAGSTREAM_*`` at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="TAGSTREAM_", env_file=".env", extra="ignore", frozen=True
    )

    demo_train_share: float = Field(
        0.35,
        gt=0,
        lt=1,
        description="Share of the dataset, earliest by created_on, that the first model is "
        "trained on; the rest is the replayed stream. (Below 0.35 the earliest posts hold "
        "fewer than ten 'mlops' items, too few to train and evaluate on.)",
    )
    demo_max_items: int | None = Field(
        None,
        ge=10,
        description="Replay only the first this many items of the stream (all when unset).",
    )
    demo_windows: int = Field(
        6, ge=1, description="Windows the stream is cut into for the report (equal counts)."
    )
    demo_items_per_second: float = Field(
        1.0, gt=0, description="Replay speed: items posted to the ingest API per second."
    )
    demo_reviewers: int = Field(2, ge=1, description="Simulated reviewers working the queue.")
    demo_reviewer_error_rate: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Share of a simulated reviewer's labels that are a wrong tag.",
    )
    demo_reviewer_seconds_per_item: float = Field(
        1.0, ge=0, description="Time a simulated reviewer takes per label."
    )
    demo_report_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of wrong auto-accepted tags that a simulated end user reports.",
    )
    demo_end_users: int = Field(
        50, ge=1, description="Distinct simulated end users the reports come from."
    )
    demo_retrain_min_new_labels: int = Field(
        100,
        ge=1,
        description="TAGSTREAM_FEEDBACK_RETRAIN_MIN_NEW_LABELS of the loop run's feedback service.",
    )
    demo_retrain_cooldown_seconds: float = Field(
        120.0, ge=0, description="TAGSTREAM_FEEDBACK_RETRAIN_COOLDOWN_SECONDS of the loop run."
    )
    demo_refresh_seconds: float = Field(
        5.0, gt=0, description="TAGSTREAM_FEEDBACK_REFRESH_SECONDS (how often the trigger looks)."
    )
    demo_rollout_steps: Annotated[tuple[str, ...], NoDecode] = Field(
        ("shadow", "25", "50", "100"), description="TAGSTREAM_ROLLOUT_STEPS of the demo."
    )
    demo_rollout_interval_seconds: float = Field(
        30.0, gt=0, description="TAGSTREAM_ROLLOUT_INTERVAL_SECONDS: each step's length."
    )
    demo_rollout_min_predictions: int = Field(
        20,
        ge=0,
        description="TAGSTREAM_ROLLOUT_MIN_PREDICTIONS: canary predictions an analysis needs.",
    )
    demo_scrape_interval: str = Field(
        "5s", description="Scrape (and rule evaluation) interval of the demo's Prometheus."
    )
    demo_settle_seconds: float = Field(
        300.0,
        gt=0,
        description="After the replay, longest wait for the last decisions, the review "
        "queue and a rollout in progress.",
    )

    @field_validator("demo_rollout_steps", mode="before")
    @classmethod
    def _parse_steps(cls, value: object) -> object:
        return split_csv(value)


#: ``--fast``: short intervals and a quick replay (fields set in the environment win).
FAST: dict[str, Any] = {
    "demo_items_per_second": 3.0,
    "demo_reviewers": 3,
    "demo_reviewer_seconds_per_item": 0.05,
    "demo_retrain_min_new_labels": 40,
    "demo_retrain_cooldown_seconds": 20.0,
    "demo_refresh_seconds": 1.0,
    "demo_rollout_steps": ("shadow", "50", "100"),
    "demo_rollout_interval_seconds": 6.0,
    "demo_rollout_min_predictions": 10,
    "demo_scrape_interval": "1s",
    "demo_settle_seconds": 90.0,
}


def demo_settings(*, fast: bool) -> DemoSettings:
    """The settings from the environment, with the ``--fast`` defaults when asked."""
    settings = DemoSettings()
    if not fast:
        return settings
    unset = {k: v for k, v in FAST.items() if k not in settings.model_fields_set}
    return settings.model_copy(update=unset)
