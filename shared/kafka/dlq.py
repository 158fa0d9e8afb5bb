"""Turning a record that cannot be processed into a dead-letter output."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord

from shared.kafka.batch import Output
from shared.messages import DeadLetter


def dead_letter(
    record: ConsumerRecord[bytes, bytes], *, stage: str, error: str, dlq_topic: str
) -> Output:
    """The DLQ entry for ``record``: original bytes, where and why it failed."""
    letter = DeadLetter(
        stage=stage,
        error=error,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key_b64=DeadLetter.b64(record.key),
        value_b64=DeadLetter.b64(record.value or b"") or "",
        failed_at=datetime.now(UTC),
    )
    return Output(dlq_topic, record.key, letter.encode())
