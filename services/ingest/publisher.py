"""The producer to ``content.raw``: connects in the background, never blocks start-up.

A broker that is down when ingest starts only makes ingest unready; the producer keeps
trying and takes traffic once connected. A send that the broker does not acknowledge
within the timeout raises ``BrokerUnavailable``: the write may still happen, so callers
answer 503 and keep the item's id for the retry (downstream is idempotent on item id).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.ingest.settings import IngestSettings
from shared.kafka import create_producer

log = structlog.get_logger(__name__)

_FIRST_RETRY_SECONDS = 0.1


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge a record (down, unreachable or too slow)."""


class KafkaPublisher:
    def __init__(self, settings: IngestSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._timeout = settings.ingest_produce_timeout_seconds
        self._connected = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Begin connecting in the background and return at once."""
        self._connecting = asyncio.create_task(self._connect(), name="ingest-producer-connect")

    async def _connect(self) -> None:
        delay = _FIRST_RETRY_SECONDS
        while True:
            producer = create_producer(self._settings)
            try:
                await producer.start()
            except asyncio.CancelledError:
                await producer.stop()
                raise
            except (KafkaError, OSError) as exc:
                await producer.stop()
                log.warning("producer_connect_failed", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._settings.ingest_connect_backoff_max_seconds)
                continue
            self._producer = producer
            self._connected.set()
            log.info("producer_connected", bootstrap=self._settings.kafka_bootstrap_servers)
            return

    async def wait_connected(self) -> None:
        """Return once the producer is connected (callers bound the wait themselves)."""
        await self._connected.wait()

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Return once the broker acknowledged the record (acks=all)."""
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("the producer is not connected to the broker yet")
        try:
            async with asyncio.timeout(self._timeout):
                acknowledgement = await producer.send(topic, value, key=key)
                await acknowledgement
        except TimeoutError:
            raise BrokerUnavailable(f"no acknowledgement within {self._timeout:g} s") from None
        except KafkaError as exc:
            raise BrokerUnavailable(f"broker error: {type(exc).__name__}") from exc

    async def reachable(self) -> bool:
        """Connected, and the broker answers a metadata request in the readiness timeout."""
        producer = self._producer
        timeout = self._settings.ingest_readiness_timeout_seconds
        if producer is None:
            return False
        try:
            # shielded by aiokafka: timing out here does not cancel the refresh itself
            return bool(await asyncio.wait_for(producer.client.force_metadata_update(), timeout))
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
