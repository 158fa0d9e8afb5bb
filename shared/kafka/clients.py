"""aiokafka clients configured from settings, with production security passed through."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.helpers import create_ssl_context

from shared.settings import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection and security options every client (producer, consumer, admin) shares."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
            certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
            keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        password = settings.kafka_sasl_password
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def create_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A producer whose sends complete only once every in-sync replica has the record.

    Idempotence is a setting: Apache Kafka supports it, the embedded broker does not.
    """
    options: dict[str, Any] = {
        **client_options(settings),
        "acks": "all",
        "enable_idempotence": settings.kafka_enable_idempotence,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
        "linger_ms": 1,
    }
    return AIOKafkaProducer(**{**options, **overrides})


def create_consumer(
    settings: Settings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer that commits explicitly and, as a new group, starts at the beginning."""
    options: dict[str, Any] = {
        **client_options(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        # The embedded broker does not answer a held fetch when records arrive, so the
        # fetch wait is the latency floor of a quiet stream (500 ms by default).
        "fetch_max_wait_ms": 50,
    }
    return AIOKafkaConsumer(*topics, **{**options, **overrides})
