"""The background producer: connecting, acknowledged sends, BrokerUnavailable, clean stop.

Connection attempts that hang or fail are in-memory stand-ins for aiokafka's producer;
sends, readiness and the connection itself also run against the real embedded broker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

import shared.kafka.producer
from shared.kafka import BackgroundProducer, BrokerUnavailable
from shared.settings import Settings
from tests.fixtures.kafka import read_topic

LONG_PAUSE = 60.0


class StandIn:
    """An aiokafka producer whose ``start`` hangs (a slow handshake) or is refused."""

    def __init__(self, *, hang: bool, attempted: asyncio.Event) -> None:
        self.hang = hang
        self.attempted = attempted
        self.stopped = False

    async def start(self) -> None:
        self.attempted.set()
        if self.hang:
            await asyncio.Event().wait()
        raise KafkaConnectionError("refused")

    async def stop(self) -> None:
        self.stopped = True


def stand_in(monkeypatch: pytest.MonkeyPatch, *, hang: bool) -> tuple[list[StandIn], asyncio.Event]:
    """The stand-ins the producer creates, and an event set at its first attempt."""
    made: list[StandIn] = []
    attempted = asyncio.Event()

    def create(settings: Settings, **options: Any) -> StandIn:
        made.append(StandIn(hang=hang, attempted=attempted))
        return made[-1]

    monkeypatch.setattr(shared.kafka.producer, "create_producer", create)
    return made, attempted


def background(settings: Settings, **overrides: Any) -> BackgroundProducer:
    options: dict[str, Any] = {
        "name": "test-producer",
        "produce_timeout_seconds": 2.0,
        "connect_backoff_max_seconds": LONG_PAUSE,
        **overrides,
    }
    return BackgroundProducer(settings, **options)


async def test_stop_during_a_connection_attempt_cancels_it_and_closes_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made, attempted = stand_in(monkeypatch, hang=True)
    producer = background(Settings(environment="test"))
    await producer.start()  # returns at once, connecting in the background
    await asyncio.wait_for(attempted.wait(), 5)
    await asyncio.wait_for(producer.stop(), 2.0)
    assert made[0].stopped  # what start() had opened is closed, not leaked
    assert not producer.connected


async def test_stop_during_the_backoff_between_attempts_returns_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made, attempted = stand_in(monkeypatch, hang=False)
    producer = background(Settings(environment="test"))
    producer._backoff = shared.kafka.producer.Backoff(LONG_PAUSE, first=LONG_PAUSE)
    await producer.start()
    await asyncio.wait_for(attempted.wait(), 5)  # refused: now in its first pause
    await asyncio.wait_for(producer.stop(), 2.0)
    assert len(made) == 1  # still in its first pause: no second attempt
    assert made[0].stopped


async def test_a_send_before_connecting_raises_broker_unavailable() -> None:
    producer = background(Settings(environment="test"))
    with pytest.raises(BrokerUnavailable, match="not connected"):
        await producer.send("content.raw", b"k", b"v")
    assert await producer.reachable() is False
    await producer.stop()  # never started: nothing to do, no error


async def test_a_refused_broker_keeps_it_unconnected_and_unreachable() -> None:
    settings = Settings(environment="test", kafka_bootstrap_servers="127.0.0.1:1")
    producer = background(settings, connect_backoff_max_seconds=0.2)
    await producer.start()
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(producer.wait_connected(), 1.0)
        assert not producer.connected
        assert await producer.reachable() is False
    finally:
        await asyncio.wait_for(producer.stop(), 2.0)


@pytest.mark.kafka
async def test_sends_are_acknowledged_and_readable(topics: Settings) -> None:
    producer = background(topics)
    await producer.start()
    try:
        await asyncio.wait_for(producer.wait_connected(), 20)
        assert await producer.reachable()
        await producer.send(topics.topic_raw, b"item-1", b"hello")
    finally:
        await producer.stop()
    assert not producer.connected
    assert await producer.reachable() is False
    assert await read_topic(topics, topics.topic_raw, expect=1) == [b"hello"]


@pytest.mark.kafka
async def test_a_record_the_broker_refuses_raises_broker_unavailable(topics: Settings) -> None:
    producer = background(topics)
    await producer.start()
    try:
        await asyncio.wait_for(producer.wait_connected(), 20)
        with pytest.raises(BrokerUnavailable, match="broker error: MessageSizeTooLargeError"):
            await producer.send(topics.topic_raw, b"k", b"x" * 2_000_000)
    finally:
        await producer.stop()
