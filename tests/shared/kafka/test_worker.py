"""The consumer worker: stop honoured in every wait, rewind and re-delivery, readiness.

A broker that refuses connections needs no broker at all; the rest runs against the real
embedded broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from shared.kafka import ConsumerWorker, Output, WorkerConfig, create_producer
from shared.kafka.backoff import Backoff
from shared.kafka.batch import Record, produce_all
from shared.settings import Settings
from tests.fixtures.kafka import eventually, read_topic

#: A first pause far longer than any test waits: only ``stop`` can end it in time.
LONG_PAUSE = 60.0


def config(settings: Settings, **overrides: object) -> WorkerConfig:
    values: dict[str, object] = {
        "name": "test",
        "topics": (settings.topic_raw,),
        "group_id": f"worker-{settings.topic_raw}",
        "max_records": 8,
        "max_wait_ms": 100,
        "backoff_max_seconds": LONG_PAUSE,
        "stuck_after_seconds": 60.0,
        **overrides,
    }
    return WorkerConfig(**values)  # type: ignore[arg-type]


async def nothing(records: Sequence[Record]) -> Sequence[Output]:
    return []


async def produce(settings: Settings, count: int) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        outputs = [Output(settings.topic_raw, b"%d" % i, b"%d" % i) for i in range(count)]
        await produce_all(producer, outputs)
    finally:
        await producer.stop()


async def test_a_stop_set_during_the_connect_backoff_ends_the_worker_at_once() -> None:
    settings = Settings(environment="test", kafka_bootstrap_servers="127.0.0.1:1")
    failed = asyncio.Event()
    worker = ConsumerWorker(
        settings,
        config(settings),
        nothing,
        on_error=lambda stage: failed.set(),
        backoff=Backoff(LONG_PAUSE, first=LONG_PAUSE),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(failed.wait(), 30)  # connect refused: now waiting LONG_PAUSE
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 2.0)
    assert worker.running is False
    assert await worker.readiness() == {"consumer_running": False}


@pytest.mark.kafka
async def test_a_stop_set_during_a_failed_batchs_backoff_ends_the_worker_at_once(
    topics: Settings,
) -> None:
    await produce(topics, 3)
    failing = asyncio.Event()

    async def never_acknowledged(records: Sequence[Record]) -> Sequence[Output]:
        return [Output(topics.topic_classified, None, b"x" * 2_000_000)]  # over the limit

    worker = ConsumerWorker(
        topics,
        config(topics),
        never_acknowledged,
        on_error=lambda stage: failing.set() if stage == "produce" else None,
        backoff=Backoff(LONG_PAUSE, first=LONG_PAUSE),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(failing.wait(), 30)
    finally:
        stop.set()
    await asyncio.wait_for(task, 5.0)  # leaves the group; well under the pause


@pytest.mark.kafka
async def test_an_unacknowledged_batch_is_rewound_and_delivered_again(topics: Settings) -> None:
    count = 20
    await produce(topics, count)
    calls: list[list[bytes]] = []
    committed: list[bytes] = []
    stop = asyncio.Event()

    async def handle(records: Sequence[Record]) -> Sequence[Output]:
        calls.append([r.value or b"" for r in records])
        if len(calls) == 1:  # the broker refuses the first batch's output: no ack
            return [Output(topics.topic_classified, None, b"x" * 2_000_000)]
        return [Output(topics.topic_classified, r.key, r.value or b"") for r in records]

    def on_batch(records: Sequence[Record], outputs: Sequence[Output]) -> None:
        committed.extend(r.value or b"" for r in records)
        if len(committed) >= count:
            stop.set()

    errors: list[str] = []
    worker = ConsumerWorker(
        topics,
        config(topics),
        handle,
        on_batch=on_batch,
        on_error=errors.append,
        backoff=Backoff(1.0, first=0.05),
    )
    await asyncio.wait_for(worker.run(stop), 60)

    first = calls[0]
    later = [value for call in calls[1:] for value in call]
    assert errors == ["produce"]
    assert set(first) <= set(later)  # every record of the failed batch came again
    assert sorted(committed) == sorted(b"%d" % i for i in range(count))  # each once
    outputs = await read_topic(topics, topics.topic_classified, expect=count)
    assert sorted(outputs) == sorted(b"%d" % i for i in range(count))


@pytest.mark.kafka
async def test_lag_and_a_stuck_worker_show_in_readiness(topics: Settings) -> None:
    await produce(topics, 30)
    gate = asyncio.Event()

    async def held(records: Sequence[Record]) -> Sequence[Output]:
        await gate.wait()  # the batch never finishes until the test says so
        return []

    lags: list[int] = []
    worker = ConsumerWorker(
        topics,
        config(topics, stuck_after_seconds=0.5),
        held,
        on_lag=lambda lag, held: lags.append(sum(lag.values())),
    )
    assert await worker.readiness() == {"consumer_running": False}
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        stuck = await eventually(worker.readiness, lambda c: not c.get("making_progress", True))
        waiting = sum(worker.lag.values())
        gate.set()
        recovered = await eventually(worker.readiness, lambda c: all(c.values()))

        async def current_lag() -> int:
            return sum(worker.lag.values())

        drained = await eventually(current_lag, lambda value: value == 0)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    running = {"consumer_running": True, "broker_reachable": True}
    assert stuck == {**running, "making_progress": False}
    assert waiting == 30  # nothing committed: highwater minus committed, over the partitions
    assert recovered == {**running, "making_progress": True}
    assert drained == 0
    assert lags[-1] == 0  # the last report on stopping clears the gauge
    assert worker.running is False


@pytest.mark.kafka
async def test_every_assignment_of_the_group_reaches_the_assign_hook(topics: Settings) -> None:
    """One assignment on joining; a second member joining and leaving gives more."""
    first_seen: list[list[int]] = []
    second_seen: list[list[int]] = []
    first = ConsumerWorker(
        topics, config(topics), nothing, on_assign=lambda p: first_seen.append(list(p))
    )
    second = ConsumerWorker(
        topics, config(topics), nothing, on_assign=lambda p: second_seen.append(list(p))
    )
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    first_task = asyncio.create_task(first.run(stop_first))
    try:

        async def seen_first() -> int:
            return len(first_seen)

        assert await eventually(seen_first, lambda n: n >= 1) == 1
        assert sorted(first_seen[0]) == list(range(topics.kafka_partitions))
        second_task = asyncio.create_task(second.run(stop_second))

        async def split() -> tuple[int, int]:
            return len(first_seen), len(second_seen)

        joined = await eventually(split, lambda n: n[0] >= 2 and n[1] >= 1, within=40)
        stop_second.set()
        await asyncio.wait_for(second_task, 20)
        left = await eventually(seen_first, lambda n: n > joined[0], within=40)
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.wait_for(first_task, 20)
    assert joined[0] >= 2, joined  # the join rebalanced the first member
    assert joined[1] >= 1, joined
    assert left > joined[0]  # and so did the leave
    assert sorted(first_seen[-1]) == list(range(topics.kafka_partitions))
