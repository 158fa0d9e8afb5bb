"""Ingest and a consumer against a real broker behind a fault proxy, and a paused broker.

Invariants, whatever the fault: ingest answers 202 or 503 with ``Retry-After`` (never a
500), every 202 is on ``content.raw`` afterwards, readiness is false while the broker
cannot be reached and true again after, and consumers resume by themselves.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.ingest.app import create_app
from shared.kafka import create_producer, ensure_topics
from shared.messages import ContentItem, ReviewRequest
from shared.settings import Settings
from tagstream.local.broker import EmbeddedBroker, free_port
from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.kafka import committed_behind, eventually, read_topic
from tests.fixtures.services import ServiceProcess, port, running, service_env
from tests.services.ingest.conftest import running as running_app
from tests.services.ingest.test_broker_outage import outage_settings, wait_ready

pytestmark = [pytest.mark.kafka, pytest.mark.chaos]

RETRY_AFTER = "3"  # outage_settings: ingest_retry_after_seconds=3


@dataclass
class Faulty:
    proxy: FaultProxy
    broker: EmbeddedBroker
    settings: Settings


@pytest.fixture
def faulty(kafka_settings: Settings, tmp_path: Path) -> Iterator[Faulty]:
    """A broker of this test's own, reached only through a fault proxy."""
    broker_port, proxy_port = free_port(), free_port()
    settings = kafka_settings.model_copy(
        update={"kafka_bootstrap_servers": f"127.0.0.1:{proxy_port}"}
    )
    with (
        FaultProxy(broker_port, proxy_port) as proxy,
        EmbeddedBroker(
            broker_port, log_file=tmp_path / "broker.log", advertised_port=proxy_port
        ) as broker,
    ):
        try:
            yield Faulty(proxy, broker, settings)
        finally:
            if broker.process is not None:
                os.kill(broker.process.pid, signal.SIGCONT)  # a failed test left it paused


@pytest.fixture
async def client(faulty: Faulty) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_topics(faulty.settings)
    port = int(faulty.settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
    settings = outage_settings(faulty.settings, faulty.settings.database_url, port)
    async with running_app(create_app(settings, metrics_registry=CollectorRegistry())) as http:
        yield http


class Ledger:
    """Every answer ingest gave, checked against the invariants as it comes."""

    def __init__(self) -> None:
        self.accepted: set[str] = set()
        self.statuses: list[int] = []

    async def post(self, client: httpx.AsyncClient) -> int:
        title = f"graph neural networks {uuid.uuid4().hex}"
        response = await client.post("/v1/items", json={"title": title})
        self.statuses.append(response.status_code)
        assert response.status_code in (202, 503), (response.status_code, response.text)
        if response.status_code == 202:
            self.accepted.add(response.json()["id"])
        else:
            assert response.headers["Retry-After"] == RETRY_AFTER
        return response.status_code

    async def all_on_the_topic(self, settings: Settings) -> None:
        values = await read_topic(settings, settings.topic_raw, expect=len(self.accepted))
        assert self.accepted <= {ContentItem.decode(v).item_id for v in values}


async def until_ready(client: httpx.AsyncClient, ledger: Ledger) -> None:
    await wait_ready(client, within=60)
    assert await ledger.post(client) == 202


async def test_a_blackholed_broker_gets_503s_and_unready_then_recovers(
    faulty: Faulty, client: httpx.AsyncClient
) -> None:
    ledger = Ledger()
    assert await ledger.post(client) == 202
    faulty.proxy.blackhole()
    assert await ledger.post(client) == 503
    assert (await client.get("/readyz")).status_code == 503
    faulty.proxy.heal()
    await until_ready(client, ledger)
    await ledger.all_on_the_topic(faulty.settings)


async def test_connections_reset_again_and_again_never_give_a_false_202(
    faulty: Faulty, client: httpx.AsyncClient
) -> None:
    ledger = Ledger()
    assert await ledger.post(client) == 202
    for _ in range(5):
        posts = [asyncio.create_task(ledger.post(client)) for _ in range(4)]
        await asyncio.sleep(0)  # let them reach the producer before the reset
        await asyncio.to_thread(faulty.proxy.reset)
        await asyncio.gather(*posts)
    faulty.proxy.refuse()
    assert await ledger.post(client) == 503
    faulty.proxy.heal()
    await until_ready(client, ledger)
    await ledger.all_on_the_topic(faulty.settings)
    assert faulty.proxy.connections > 1  # the producer did reconnect


async def test_a_slow_network_under_the_timeouts_still_accepts(
    faulty: Faulty, client: httpx.AsyncClient
) -> None:
    ledger = Ledger()
    faulty.proxy.delay(0.3)  # per chunk, each way; the produce timeout is 2 s
    assert [await ledger.post(client) for _ in range(3)] == [202, 202, 202]
    faulty.proxy.heal()
    await ledger.all_on_the_topic(faulty.settings)


async def test_a_paused_broker_gets_503s_and_unready_then_recovers_on_resume(
    faulty: Faulty, client: httpx.AsyncClient
) -> None:
    ledger = Ledger()
    assert await ledger.post(client) == 202
    assert faulty.broker.process is not None
    os.kill(faulty.broker.process.pid, signal.SIGSTOP)
    try:
        assert await ledger.post(client) == 503
        assert (await client.get("/readyz")).status_code == 503
    finally:
        os.kill(faulty.broker.process.pid, signal.SIGCONT)
    await until_ready(client, ledger)
    await ledger.all_on_the_topic(faulty.settings)


def review_request(n: int) -> ReviewRequest:
    now = datetime.now(UTC)
    return ReviewRequest(
        item_id=f"fault-{n}-{uuid.uuid4().hex[:8]}",
        title="graph neural networks",
        reason="low_confidence",
        confidence=0.3,
        probabilities={"other": 0.3},
        model_version="v0",
        received_at=now,
        requested_at=now,
    )


async def readyz(url: str) -> int:
    async with httpx.AsyncClient() as http:
        try:
            return (await http.get(url + "/readyz", timeout=5)).status_code
        except httpx.HTTPError:
            return 0


def raw_item(n: int) -> ContentItem:
    return ContentItem(
        item_id=f"fault-{n}-{uuid.uuid4().hex[:8]}",
        title="graph neural networks",
        received_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("service", ["review", "feedback"])
async def test_a_consumer_is_unready_while_cut_off_and_resumes_by_itself(
    faulty: Faulty, tmp_path: Path, service: str
) -> None:
    settings = faulty.settings
    await ensure_topics(settings)
    group = f"{service}-{uuid.uuid4().hex[:8]}"
    service_port = port()
    env = service_env(
        settings,
        **{
            f"TAGSTREAM_{service.upper()}_PORT": service_port,
            f"TAGSTREAM_{service.upper()}_GROUP_ID": group,
        },
        TAGSTREAM_FEEDBACK_API_KEYS="feedback-key-for-tests",
        TAGSTREAM_KAFKA_REQUEST_TIMEOUT_MS="2000",
    )
    process = ServiceProcess(service, env, int(service_port), tmp_path)
    with running(process):
        process.start("/readyz")
        faulty.proxy.blackhole()
        assert await eventually(lambda: readyz(process.url), lambda s: s == 503, 60) == 503
        faulty.proxy.heal()
        faulty.proxy.reset()  # what the blackhole held is stale: start clean
        assert await eventually(lambda: readyz(process.url), lambda s: s == 200, 90) == 200
        topic = settings.topic_review if service == "review" else settings.topic_raw
        make = review_request if service == "review" else raw_item
        producer = create_producer(settings)
        await producer.start()
        try:
            for n in range(5):
                message = make(n)
                key = message.item_id.encode()
                await (await producer.send(topic, message.encode(), key=key))
        finally:
            await producer.stop()
        behind = await eventually(
            lambda: committed_behind(settings, {group: (topic,)}), lambda n: n == 0, 60
        )
        assert behind == 0, "the consumer did not resume"
