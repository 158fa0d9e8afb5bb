"""Ingest settings: the shared base plus the HTTP server, auth and input limits."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from shared.security import check_production_keys
from shared.settings import Settings, split_csv


class IngestSettings(Settings):
    """Settings of the ingest service (``TAGSTREAM_INGEST_*``)."""

    ingest_host: str = Field("127.0.0.1", description="Interface the HTTP server listens on.")
    ingest_port: int = Field(8001, ge=1, le=65535, description="Port the HTTP server listens on.")
    ingest_api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (),
        description="Comma-separated scraper API keys (Bearer tokens). Hashed at start-up; "
        "required in production. With none set, every request is refused with 401.",
    )
    ingest_max_body_bytes: int = Field(
        1_048_576, gt=0, description="Largest request body accepted (bytes); larger is 413."
    )
    ingest_max_batch_items: int = Field(
        500, gt=0, description="Most items one POST /v1/items:batch may carry; more is 413."
    )
    ingest_max_url_chars: int = Field(2048, gt=0, description="Longest url accepted.")
    ingest_max_source_chars: int = Field(200, gt=0, description="Longest source accepted.")
    ingest_max_external_id_chars: int = Field(
        200, gt=0, description="Longest external_id accepted."
    )
    ingest_produce_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="How long a request waits for the broker to acknowledge its items "
        "before answering 503.",
    )
    ingest_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After sent with 503 when the broker or database is down."
    )
    ingest_readiness_timeout_seconds: float = Field(
        1.0, gt=0, description="Time limit of each readiness check (database, broker)."
    )
    ingest_readiness_cache_seconds: float = Field(
        1.0, ge=0, description="How long a readiness result is reused before checking again."
    )
    ingest_rate_limit_items_per_second: float = Field(
        1000.0,
        ge=0,
        description="Items per second each API key may send, sustained (token refill "
        "rate; a batch of 500 costs 500); over it the request is 429 with Retry-After. "
        "0 turns the limit off.",
    )
    ingest_rate_limit_burst_items: int = Field(
        2000,
        ge=1,
        description="Items an API key may send at once (bucket size); at least "
        "TAGSTREAM_INGEST_MAX_BATCH_ITEMS, so that a full batch can pass.",
    )
    ingest_max_in_flight_items: int = Field(
        2000,
        ge=0,
        description="Most items accepted for processing and not yet acknowledged by the "
        "broker, all keys together; a request that would go over is 503 with Retry-After "
        "at once. At least TAGSTREAM_INGEST_MAX_BATCH_ITEMS; 0 turns the bound off.",
    )
    ingest_overload_retry_after_seconds: int = Field(
        1, ge=1, description="Retry-After sent with 503 when too many items are in flight."
    )
    ingest_connect_backoff_max_seconds: float = Field(
        5.0,
        gt=0,
        description="Longest pause between attempts to connect the producer at start-up.",
    )

    @field_validator("ingest_api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        return split_csv(value)

    @model_validator(mode="after")
    def _a_full_batch_can_pass(self) -> IngestSettings:
        batch = self.ingest_max_batch_items
        if self.ingest_rate_limit_items_per_second and self.ingest_rate_limit_burst_items < batch:
            raise ValueError(
                f"TAGSTREAM_INGEST_RATE_LIMIT_BURST_ITEMS ({self.ingest_rate_limit_burst_items}) "
                f"must be at least TAGSTREAM_INGEST_MAX_BATCH_ITEMS ({batch}): "
                "a full batch could never pass"
            )
        if 0 < self.ingest_max_in_flight_items < batch:
            raise ValueError(
                f"TAGSTREAM_INGEST_MAX_IN_FLIGHT_ITEMS ({self.ingest_max_in_flight_items}) "
                f"must be 0 or at least TAGSTREAM_INGEST_MAX_BATCH_ITEMS ({batch}): "
                "a full batch could never pass"
            )
        return self

    @model_validator(mode="after")
    def _refuse_missing_keys_in_production(self) -> IngestSettings:
        if self.environment == "production":
            check_production_keys(
                self.ingest_api_keys,
                "TAGSTREAM_INGEST_API_KEYS",
                "comma-separated scraper API keys",
            )
        return self
