"""A producer that connects in the background and never blocks start-up.

A broker that is down when a service starts only makes it unready: the producer keeps
trying (jittered backoff up to a cap the service sets) and takes traffic once
connected. A send that the broker does not acknowledge within the timeout raises
``BrokerUnavailable``: the write may still happen, so callers answer 503 and keep the
record's key for the retry (consumers downstream are idempotent on it).

``Publisher`` is what the services' logic depends on; tests pass in-memory ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from shared.kafka.backoff import Backoff
from shared.kafka.clients import create_producer
from shared.observability.tracing import send_span
from shared.settings import Settings

log = structlog.get_logger(__name__)


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge a record (down, unreachable or too slow)."""


class Publisher(Protocol):
    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Return once the broker acknowledged; raise ``BrokerUnavailable`` otherwise."""
        ...


class BackgroundProducer:
    """``Publisher`` on an aiokafka producer (acks=all) that connects in the background."""

    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        produce_timeout_seconds: float,
        connect_backoff_max_seconds: float,
        readiness_timeout_seconds: float = 2.0,
        service: str = "tagstream",
        **producer_options: Any,
    ) -> None:
        self._settings = settings
        self._name = name
        self._service = service  # names the send spans
        self._timeout = produce_timeout_seconds
        self._readiness_timeout = readiness_timeout_seconds
        self._backoff = Backoff(connect_backoff_max_seconds)
        self._options = producer_options
        self._producer: AIOKafkaProducer | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Begin connecting in the background and return at once."""
        self._connecting = asyncio.create_task(self._connect(), name=f"{self._name}-connect")

    async def _connect(self) -> None:
        while True:
            producer = create_producer(self._settings, **self._options)
            try:
                await producer.start()
            except asyncio.CancelledError:
                # stop() while connecting: close what start() opened, then end.
                await producer.stop()
                raise
            except (KafkaError, OSError) as exc:
                await producer.stop()
                delay = self._backoff.next()
                log.warning(
                    "producer_connect_failed", producer=self._name, error=str(exc), retry_in_s=delay
                )
                await asyncio.sleep(delay)  # stop() cancels this task: the wait ends with it
                continue
            self._producer = producer
            self._connected.set()
            log.info(
                "producer_connected",
                producer=self._name,
                bootstrap=self._settings.kafka_bootstrap_servers,
            )
            return

    async def wait_connected(self) -> None:
        """Return once the producer is connected (callers bound the wait themselves)."""
        await self._connected.wait()

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Return once the broker acknowledged the record (acks=all).

        The record carries the send span's ``traceparent`` header while tracing is on.
        """
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("the producer is not connected to the broker yet")
        with send_span(self._service, topic, key) as headers:
            try:
                async with asyncio.timeout(self._timeout):
                    acknowledgement = await producer.send(topic, value, key=key, headers=headers)
                    await acknowledgement
            except TimeoutError:
                raise BrokerUnavailable(f"no acknowledgement within {self._timeout:g} s") from None
            except KafkaError as exc:
                raise BrokerUnavailable(f"broker error: {type(exc).__name__}") from exc

    async def reachable(self) -> bool:
        """Connected, and the broker answers a metadata request in the readiness timeout."""
        producer = self._producer
        if producer is None:
            return False
        try:
            # shielded by aiokafka: timing out here does not cancel the refresh itself
            update = producer.client.force_metadata_update()
            return bool(await asyncio.wait_for(update, self._readiness_timeout))
        except (TimeoutError, KafkaError):
            return False

    async def stop(self) -> None:
        """Stop connecting, flush what is in flight and close."""
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
            self._connecting = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
            self._connected.clear()
