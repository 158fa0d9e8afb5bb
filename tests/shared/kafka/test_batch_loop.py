"""The commit-after-ack loop against the real embedded broker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from shared.kafka import Output, create_consumer, create_producer, dead_letter, run_batches
from shared.kafka.batch import Record, produce_all
from shared.messages import DeadLetter
from shared.settings import Settings
from tests.fixtures.kafka import read_topic

pytestmark = pytest.mark.kafka


async def test_outputs_are_produced_and_offsets_committed(topics: Settings) -> None:
    s = topics
    producer = create_producer(s)
    await producer.start()
    try:
        await produce_all(
            producer, [Output(s.topic_raw, str(i).encode(), b"%d" % i) for i in range(50)]
        )
        consumer = create_consumer(s, s.topic_raw, group_id=f"g-{s.topic_raw}")
        await consumer.start()
        stop = asyncio.Event()
        seen: list[int] = []

        async def handle(records: Sequence[Record]) -> list[Output]:
            outs = []
            for r in records:
                if r.value == b"13":
                    outs.append(
                        dead_letter(r, stage="test", error="unlucky", dlq_topic=s.topic_dlq)
                    )
                else:
                    outs.append(Output(s.topic_classified, r.key, r.value or b""))
            return outs

        def on_batch(records: Sequence[Record], outputs: Sequence[Output]) -> None:
            seen.extend(int(r.value or b"0") for r in records)
            if len(seen) >= 50:
                stop.set()

        await asyncio.wait_for(
            run_batches(
                consumer,
                producer,
                handle,
                max_records=16,
                max_wait_ms=100,
                stop=stop,
                on_batch=on_batch,
            ),
            timeout=30,
        )
        committed = sum([await consumer.committed(tp) or 0 for tp in consumer.assignment()])
        await consumer.stop()
    finally:
        await producer.stop()
    assert sorted(seen) == list(range(50))
    assert committed == 50
    assert len(await read_topic(s, s.topic_classified, expect=49)) == 49
    (letter,) = [DeadLetter.decode(v) for v in await read_topic(s, s.topic_dlq, expect=1)]
    assert letter.original_value == b"13"
    assert letter.topic == s.topic_raw
    assert letter.error == "unlucky"
