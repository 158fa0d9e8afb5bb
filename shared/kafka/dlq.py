"""Turning a record that cannot be processed into a dead-letter output."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord

from shared.kafka.batch import Output
from shared.messages import DeadLetter

#: Largest original value kept in a dead letter: base64 grows it by a third, and an entry
#: over the broker's message limit would block the consumer that writes it.
MAX_KEPT_VALUE_BYTES = 512 * 1024


def dead_letter(
    record: ConsumerRecord[bytes, bytes],
    *,
    stage: str,
    error: str,
    dlq_topic: str,
    kind: str | None = None,
) -> Output:
    """The DLQ entry for ``record``: original bytes (truncated if huge), where and why.

    ``kind`` is the bounded label of what is wrong (a ``MessageErrorKind`` value for a
    record that does not decode), for counting and filtering without parsing ``error``.
    """
    value = record.value or b""
    if len(value) > MAX_KEPT_VALUE_BYTES:
        error = (
            f"{error} (value truncated to its first {MAX_KEPT_VALUE_BYTES} of {len(value)} bytes)"
        )
        value = value[:MAX_KEPT_VALUE_BYTES]
    letter = DeadLetter(
        stage=stage,
        error=error,
        error_kind=kind,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key_b64=DeadLetter.b64(record.key),
        value_b64=DeadLetter.b64(value) or "",
        failed_at=datetime.now(UTC),
    )
    return Output(dlq_topic, record.key, letter.encode())
