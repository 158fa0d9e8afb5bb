"""Settings of the feedback service: the shared base plus ``TAGSTREAM_FEEDBACK_*`` fields."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from shared.security import check_production_keys
from shared.settings import Settings, split_csv


class FeedbackSettings(Settings):
    """What ``python -m services.feedback`` reads from ``TAGSTREAM_*`` at start-up."""

    feedback_host: str = Field("127.0.0.1", description="Interface the HTTP server listens on.")
    feedback_port: int = Field(8004, ge=1, le=65535, description="Port of the HTTP server.")
    feedback_api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (),
        description="Comma-separated API keys of clients that send user reports (Bearer "
        "tokens). Hashed at start-up; required in production. None set: every report is 401.",
    )
    feedback_rate_limit_per_minute: float = Field(
        30.0,
        gt=0,
        description="Reports per minute each end user of an API key may send (token refill rate).",
    )
    feedback_rate_limit_burst: int = Field(
        10, ge=1, description="Reports an end user of an API key may send at once (bucket size)."
    )
    feedback_produce_timeout_seconds: float = Field(
        5.0, gt=0, description="How long a report waits for the broker's ack before 503."
    )
    feedback_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After sent with 503 when the broker is down."
    )
    feedback_group_id: str = Field(
        "tagstream-feedback",
        description="Kafka consumer group of the store (labels, classifications, raw items).",
    )
    feedback_batch_max_items: int = Field(500, ge=1, description="Largest micro-batch, records.")
    feedback_batch_max_wait_ms: int = Field(
        200, ge=0, description="Longest wait for a micro-batch to fill."
    )
    feedback_fetch_max_wait_ms: int = Field(
        1000,
        ge=1,
        le=5000,
        description="Longest time the broker holds a fetch of the store's consumer when no "
        "records are waiting. Nothing waits on the store by the millisecond, and on the "
        "embedded broker every fetch costs CPU for each partition it covers (the store "
        "reads four topics) and each batch stored there: fetching seldom keeps the "
        "broker's CPU per item lower (docs/reliability.md, Soak).",
    )
    feedback_retry_backoff_max_seconds: float = Field(
        10.0, gt=0, description="Longest pause before the consumer reconnects or retries a batch."
    )
    feedback_connect_backoff_max_seconds: float = Field(
        5.0, gt=0, description="Longest pause between the report producer's connection attempts."
    )
    feedback_stuck_after_seconds: float = Field(
        60.0,
        gt=0,
        description="Unready when records are waiting (lag > 0) and no offset was committed "
        "for this long.",
    )
    feedback_refresh_seconds: float = Field(
        15.0,
        gt=0,
        description="How often online accuracy and drift are recomputed from the database "
        "and the retraining trigger is checked.",
    )
    feedback_audit_min_samples: int = Field(
        100,
        ge=1,
        description="Audited auto-accepted items of a version (with a gold label) before "
        "its precision may alert (exported as tagstream_feedback_audit_min_samples).",
    )
    feedback_precision_confidence: float = Field(
        0.95,
        gt=0.5,
        lt=1,
        description="One-sided confidence of the Wilson bounds of audit precision.",
    )
    feedback_items_max: int = Field(
        200_000,
        ge=100,
        description="Most item texts (from content.raw) kept; the oldest are pruned. "
        "Texts of items with a gold label are always kept (they are training data).",
    )
    feedback_retrain_min_new_labels: int = Field(
        200,
        ge=1,
        description="Retrain once this many gold labels arrived since the newest "
        "registered version was trained.",
    )
    feedback_retrain_enabled: bool = Field(
        True, description="Run the retraining trigger; off: only metrics and the store."
    )
    feedback_retrain_cooldown_seconds: float = Field(
        3600.0,
        ge=0,
        description="Least time between two automatic retraining runs (drift stays high "
        "until a new version is promoted; this keeps it from retraining in a loop).",
    )
    feedback_drift_threshold: float = Field(
        0.35,
        gt=0,
        le=1,
        description="Retrain when the out-of-vocabulary share of recent items' tokens "
        "(vs the stable model's vocabulary) exceeds this.",
    )
    feedback_drift_window: int = Field(
        500, ge=1, description="How many of the most recent items the drift score looks at."
    )
    feedback_drift_min_items: int = Field(
        100, ge=1, description="No drift score (and no drift trigger) with fewer recent items."
    )
    feedback_shutdown_timeout_seconds: float = Field(
        15.0, gt=0, description="On SIGTERM, how long the in-flight batch may take."
    )

    @field_validator("feedback_api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        return split_csv(value)

    @model_validator(mode="after")
    def _refuse_missing_keys_in_production(self) -> FeedbackSettings:
        if self.environment == "production":
            check_production_keys(
                self.feedback_api_keys, "TAGSTREAM_FEEDBACK_API_KEYS", "keys of report clients"
            )
        return self
