"""Settings of the classifier service: the shared base plus the hot path's knobs.

Field names carry a ``classifier_`` prefix so that one environment (or ``.env``) can
configure every service without clashes: ``TAGSTREAM_CLASSIFIER_PORT`` and so on.
"""

from __future__ import annotations

from pydantic import Field

from shared.settings import Settings


class ClassifierSettings(Settings):
    """What ``python -m services.classifier`` reads from ``TAGSTREAM_*`` at start-up."""

    classifier_host: str = Field(
        "0.0.0.0",  # probes and scrapes come from outside the container  # nosec B104
        description="Interface the metrics and probe server listens on.",
    )
    classifier_port: int = Field(
        8002, ge=1, le=65535, description="Port of /metrics, /healthz and /readyz."
    )
    classifier_group_id: str = Field(
        "tagstream-classifier",
        description="Kafka consumer group; instances in one group share the partitions.",
    )
    classifier_batch_max_items: int = Field(
        512, ge=1, le=10_000, description="Largest micro-batch, in records."
    )
    classifier_batch_max_wait_ms: int = Field(
        20,
        ge=0,
        le=10_000,
        description="Longest wait for a micro-batch to fill before it is processed anyway.",
    )
    classifier_fetch_max_wait_ms: int = Field(
        25,
        ge=1,
        le=5000,
        description="Longest time the broker holds a fetch when no records are waiting. "
        "Bounds the latency of a quiet stream on brokers that do not answer a held fetch "
        "as soon as records arrive (the embedded one).",
    )
    classifier_stuck_after_seconds: float = Field(
        60.0,
        gt=0,
        description="Unready when records are waiting (lag > 0) and no offset was "
        "committed for this long.",
    )
    classifier_model_poll_seconds: float = Field(
        5.0,
        gt=0,
        description="How often the registry is asked for the stable model: until one "
        "exists, and afterwards to pick up a promoted version.",
    )
    classifier_retry_backoff_max_seconds: float = Field(
        10.0,
        gt=0,
        description="Longest pause before a failed batch (broker unreachable) is retried.",
    )
    classifier_shutdown_timeout_seconds: float = Field(
        15.0,
        gt=0,
        description="On SIGTERM, how long the in-flight batch may take to be produced "
        "and committed before it is abandoned (and re-delivered later).",
    )
    classifier_session_timeout_ms: int = Field(
        10_000,
        ge=1000,
        description="Kafka group session timeout: how soon a crashed instance's "
        "partitions move to the others.",
    )
    classifier_heartbeat_interval_ms: int = Field(
        3000,
        ge=100,
        description="Kafka group heartbeat interval; keep it below a third of the session timeout.",
    )
    classifier_audit_share: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Share of auto-accepted items also sent to review (reason 'audit') so "
        "that online accuracy of auto decisions is measured without bias. Chosen by a hash "
        "of the item id: the same item is always in or out.",
    )
