"""The at-least-once batch loop: fetch, process, produce, wait for acks, then commit.

Offsets are committed only after every output of the batch is acknowledged by the
broker (``acks=all``), so a crash at any point re-delivers the batch instead of losing
it; consumers downstream are idempotent on item id, which makes the re-delivery
harmless. Offsets are explicit (``commit({tp: offset})``): a bare ``commit()`` during a
rebalance can raise ``CommitFailedError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple, TypeAlias

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord, TopicPartition

from shared.observability.tracing import BatchTrace, Headers

log = structlog.get_logger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]


class Output(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes
    #: Record headers; the batch loop adds ``traceparent`` to outputs keyed like an input.
    headers: Headers | None = None


Handler = Callable[[Sequence[Record]], Awaitable[Sequence[Output]]]
Hook = Callable[[Sequence[Record], Sequence[Output]], None]


async def produce_all(producer: AIOKafkaProducer, outputs: Sequence[Output]) -> None:
    """Send every output and return once the broker acknowledged all of them."""
    pending = [await producer.send(o.topic, o.value, key=o.key, headers=o.headers) for o in outputs]
    await asyncio.gather(*pending)


def continue_traces(trace: BatchTrace, outputs: Sequence[Output]) -> list[Output]:
    """``outputs``, each keyed like an input record carrying that record's trace context."""
    traced = []
    for output in outputs:
        headers = trace.headers_for(output.key)
        if headers is not None:
            output = output._replace(headers=[*(output.headers or ()), *headers])
        traced.append(output)
    return traced


async def run_batches(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    handle: Handler,
    *,
    max_records: int,
    max_wait_ms: int,
    stop: asyncio.Event,
    on_batch: Hook | None = None,
    service: str = "tagstream",
) -> None:
    """Process micro-batches (up to ``max_records`` or ``max_wait_ms``) until ``stop``.

    Each batch is traced as ``service`` (``BatchTrace``; nothing while tracing is off).
    """
    while not stop.is_set():
        fetched = await consumer.getmany(timeout_ms=max_wait_ms, max_records=max_records)
        records = [r for batch in fetched.values() for r in batch]
        if not records:
            continue
        with BatchTrace(service, records) as trace:
            outputs = await handle(records)
            if trace.traced:
                outputs = continue_traces(trace, outputs)
            await produce_all(producer, outputs)
            offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items() if batch}
            await commit(consumer, offsets)
        if on_batch is not None:
            on_batch(records, outputs)


async def commit(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> bool:
    """Commit processed offsets; a rebalance in between only means re-delivery."""
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as exc:
        # The partitions moved to another member, which will process these records
        # again: duplicates downstream, never loss.
        log.warning("commit_failed_rebalance", error=str(exc), partitions=len(offsets))
        return False
    return True
