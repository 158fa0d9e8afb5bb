"""Fixtures for the classifier: a tiny trained model, items, records, running instances."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from services.classifier.settings import ClassifierSettings
from shared.kafka import Output, client_options, create_producer
from shared.kafka.batch import Record, produce_all
from shared.messages.content import ContentItem
from shared.ml.training import train
from shared.registry import ModelVersion
from shared.settings import Settings
from tagstream.local.broker import free_port
from tests.fixtures.data import VOCAB
from tests.fixtures.db import migrated

REPO = Path(__file__).resolve().parents[3]
TAGS = tuple(VOCAB)


def item(
    item_id: str | None = None, title: str = "Image pixels yolo camera", description: str = ""
) -> ContentItem:
    return ContentItem(
        item_id=item_id or uuid.uuid4().hex,
        title=title,
        description=description,
        url="https://example.com/post",
        received_at=datetime.now(UTC),
    )


def clear_item(n: int, item_id: str | None = None) -> ContentItem:
    """An item the tiny model tags with confidence: four words of one tag's vocabulary."""
    tag = TAGS[n % len(TAGS)]
    words = VOCAB[tag]
    return item(item_id, title=" ".join(words[(n + k) % len(words)] for k in range(4)))


def unclear_item(item_id: str | None = None) -> ContentItem:
    """An item with no vocabulary the model knows: near-uniform probabilities, review."""
    return item(item_id, title="Hello world", description="Nothing to see here.")


def record(value: bytes | None, offset: int = 0, key: bytes | None = None) -> Record:
    return ConsumerRecord(
        topic="content.raw",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=(),
    )


def train_tiny(settings: Settings, tmp_path: Path) -> ModelVersion:
    from tests.fixtures.data import synthetic_rows, write_rows

    data = write_rows(tmp_path / f"tiny-{uuid.uuid4().hex[:6]}.csv", synthetic_rows())
    return train(settings, data_location=str(data)).version


def classifier_settings(base: Settings, **overrides: Any) -> ClassifierSettings:
    values: dict[str, Any] = {
        **base.model_dump(),
        "classifier_group_id": f"classifier-{uuid.uuid4().hex[:8]}",
        "classifier_model_poll_seconds": 0.2,
        "classifier_batch_max_wait_ms": 20,
        **overrides,
    }
    return ClassifierSettings(**values)


async def produce(settings: Settings, topic: str, messages: Iterable[ContentItem | bytes]) -> None:
    """Items keyed by id (spread over the partitions), raw bytes without a key."""
    producer = create_producer(settings)
    await producer.start()
    try:
        outputs = [
            Output(topic, m.item_id.encode(), m.encode())
            if isinstance(m, ContentItem)
            else Output(topic, None, m)
            for m in messages
        ]
        await produce_all(producer, outputs)
    finally:
        await producer.stop()


async def collect(
    settings: Settings,
    topic: str,
    *,
    until: set[str] | None = None,
    count: int | None = None,
    within: float = 60.0,
) -> list[bytes]:
    """Every value on ``topic`` from the beginning, once the keys cover ``until`` (or
    ``count`` values arrived) or ``within`` seconds passed. Group-less: disturbs no group."""
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        values: list[bytes] = []
        keys: set[str] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            if until is not None and until <= keys:
                break
            if count is not None and len(values) >= count:
                break
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    if r.value is not None:
                        values.append(r.value)
                        if r.key is not None:
                            keys.add(r.key.decode())
        return values
    finally:
        await consumer.stop()


async def committed_total(settings: ClassifierSettings) -> int:
    """Sum of the group's committed offsets over the input topic's partitions."""
    consumer = AIOKafkaConsumer(
        **client_options(settings), group_id=settings.classifier_group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(settings.topic_raw) or set()
        offsets = [
            await consumer.committed(TopicPartition(settings.topic_raw, p)) for p in partitions
        ]
        return sum(o or 0 for o in offsets)
    finally:
        await consumer.stop()


@pytest.fixture
def model_settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        registry_dir=tmp_path / "registry",
        database_url=migrated(f"sqlite:///{tmp_path / 'tagstream.db'}"),
    )


# -- the service as a process ------------------------------------------------------------


class ClassifierProcess:
    """``python -m services.classifier`` on its own port, logging to a file."""

    def __init__(self, settings: ClassifierSettings, log_dir: Path, name: str) -> None:
        self.port = free_port()
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAGSTREAM_")}
        env.update(environment_of(settings))
        env["TAGSTREAM_CLASSIFIER_HOST"] = "127.0.0.1"
        env["TAGSTREAM_CLASSIFIER_PORT"] = str(self.port)
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ClassifierProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.classifier"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            return await client.get(path)

    async def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` matching ``labels``; 0 when unreachable."""
        try:
            text = (await self.get("/metrics")).text
        except httpx.HTTPError:
            return 0.0
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    async def wait_until(self, name: str, at_least: float, within: float = 30.0) -> float:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            value = await self.metric(name)
            if value >= at_least or loop.time() > deadline:
                return value
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.logs()[-3000:]}")
            await asyncio.sleep(0.1)


def environment_of(settings: Settings) -> dict[str, str]:
    """``settings`` as the TAGSTREAM_* variables that reproduce them in a child process."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        env[f"TAGSTREAM_{name.upper()}"] = text
    return env


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[ClassifierProcess]]:
    """Instances started by a test; killed at the end whatever happened."""
    started: list[ClassifierProcess] = []
    yield started
    for process in started:
        process.stop()
