"""The paired accuracy check live: classifier, feedback and rollout processes, a real broker
and a real Prometheus. Every streamed item gets a reviewer's gold label; the classifier
records both versions' answers, feedback pairs them with the labels, and the rollout's
accuracy check reads the paired counts from Prometheus.

The other checks' limits are opened wide here so that online accuracy alone decides: a
canary wrong on the labelled items is rolled back by it, one as good is promoted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.kafka import Output, create_producer
from shared.kafka.batch import produce_all
from shared.messages import FeedbackLabel
from shared.registry import ModelRegistry, ModelStatus
from shared.settings import Settings
from tests.fixtures.services import ServiceProcess, port, service_env
from tests.flows.test_rollout_flow import KEY, TAGS, Stack, item, train_versions
from tests.services.rollout.helpers import PrometheusServer

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus, pytest.mark.slow]


@pytest.fixture
def stack(topics: Settings, tmp_path: Path) -> Iterator[Stack]:
    settings = topics
    stable, good, bad = train_versions(settings, tmp_path)
    ports = {name: port() for name in ("classifier", "rollout", "feedback")}
    prometheus = PrometheusServer(
        tmp_path / "prometheus", [f"127.0.0.1:{p}" for p in ports.values()]
    )
    env = service_env(
        settings,
        TAGSTREAM_CLASSIFIER_PORT=ports["classifier"],
        TAGSTREAM_CLASSIFIER_MODEL_POLL_SECONDS="2",
        TAGSTREAM_FEEDBACK_PORT=ports["feedback"],
        TAGSTREAM_FEEDBACK_GROUP_ID=f"feedback-{uuid.uuid4().hex[:8]}",
        TAGSTREAM_FEEDBACK_REFRESH_SECONDS="0.5",
        TAGSTREAM_FEEDBACK_RETRAIN_ENABLED="false",
        TAGSTREAM_ROLLOUT_PORT=ports["rollout"],
        TAGSTREAM_ROLLOUT_ADMIN_KEYS=KEY,
        TAGSTREAM_PROMETHEUS_URL=prometheus.base_url,
        TAGSTREAM_ROLLOUT_STEPS="shadow,50,100",
        TAGSTREAM_ROLLOUT_INTERVAL_SECONDS="5",
        TAGSTREAM_ROLLOUT_WINDOW_SECONDS="5",
        TAGSTREAM_ROLLOUT_TICK_SECONDS="0.25",
        TAGSTREAM_ROLLOUT_MIN_PREDICTIONS="20",
        TAGSTREAM_ROLLOUT_FAILURE_LIMIT="1",
        TAGSTREAM_ROLLOUT_INCONCLUSIVE_LIMIT="3",
        # only the paired accuracy check may decide
        TAGSTREAM_ROLLOUT_MIN_AGREEMENT="0",
        TAGSTREAM_ROLLOUT_MAX_PREDICTION_SHIFT="1",
        TAGSTREAM_ROLLOUT_MAX_REVIEW_SHARE_INCREASE="1",
        # the final step waits for the proof that the canary is no worse
        TAGSTREAM_ROLLOUT_REQUIRE_LABELS="true",
        TAGSTREAM_ROLLOUT_AUTO_START="false",  # these rollouts are started by hand
        TAGSTREAM_LOG_LEVEL="INFO",
    )
    processes = {name: ServiceProcess(name, env, int(ports[name]), tmp_path) for name in ports}
    try:
        for process in processes.values():
            process.start("/readyz")
        yield Stack(
            settings, processes["classifier"], processes["rollout"], prometheus, stable, good, bad
        )
    finally:
        for process in reversed(processes.values()):
            process.stop()
        prometheus.stop()


@contextlib.asynccontextmanager
async def labelled_stream(settings: Settings, rate: float = 100.0) -> AsyncIterator[None]:
    """Clear items to content.raw and, for each, a reviewer's label with its true tag."""
    producer = create_producer(settings)
    await producer.start()
    stop = asyncio.Event()

    async def feed() -> None:
        n = 0
        while not stop.is_set():
            batch = [(item(n + k), TAGS[(n + k) % len(TAGS)]) for k in range(10)]
            n += len(batch)
            outputs = [Output(settings.topic_raw, i.item_id.encode(), i.encode()) for i, _ in batch]
            outputs += [
                Output(
                    settings.topic_feedback,
                    i.item_id.encode(),
                    FeedbackLabel(
                        label_id=uuid.uuid4().hex,
                        item_id=i.item_id,
                        tag=tag,
                        source="reviewer",
                        labeler="flow-reviewer",
                        labeled_at=datetime.now(UTC),
                    ).encode(),
                )
                for i, tag in batch
            ]
            await produce_all(producer, outputs)
            await asyncio.sleep(len(batch) / rate)

    task = asyncio.create_task(feed())
    try:
        yield
    finally:
        stop.set()
        await task
        await producer.stop()


def online_accuracy(analysis: dict[str, object]) -> dict[str, object]:
    checks = analysis["checks"]
    assert isinstance(checks, list)
    (check,) = [c for c in checks if c["check"] == "online_accuracy"]
    result: dict[str, object] = check
    return result


async def test_a_canary_worse_on_labelled_items_is_rolled_back(stack: Stack) -> None:
    async with labelled_stream(stack.settings):
        await asyncio.sleep(2)
        await asyncio.to_thread(stack.cli, "start", stack.bad)
        done = await stack.until(lambda r: r["state"] in ("promoted", "rolled_back"), 120, "end")
    assert done["state"] == "rolled_back", json.dumps(done)[:3000]
    last = done["analyses"][0]
    assert last["verdict"] == "fail"
    failed = {c["check"] for c in last["checks"] if c["verdict"] == "fail"}
    assert failed == {"online_accuracy"}
    accuracy = online_accuracy(last)
    values = accuracy["values"]
    assert isinstance(values, dict)
    # shifted labels: the canary is wrong on every labelled item stable gets right
    assert values["labeled"] >= 30
    assert values["canary_only"] == 0
    assert values["stable_only"] >= 30
    assert values["upper"] < -0.05
    with ModelRegistry.open(stack.settings) as registry:
        assert registry.get(stack.bad).status is ModelStatus.ROLLED_BACK
        assert registry.traffic().canary is None


async def test_a_canary_as_good_on_labelled_items_is_promoted(stack: Stack) -> None:
    async with labelled_stream(stack.settings):
        await asyncio.sleep(2)
        await asyncio.to_thread(stack.cli, "start", stack.good)
        done = await stack.until(lambda r: r["state"] in ("promoted", "rolled_back"), 150, "end")
    assert done["state"] == "promoted", json.dumps(done)[:3000]
    final = done["analyses"][0]
    assert final["verdict"] == "pass"
    accuracy = online_accuracy(final)
    assert accuracy["verdict"] == "pass"
    values = accuracy["values"]
    assert isinstance(values, dict)
    assert values["lower"] > -0.05  # proven no worse: what the final step waited for
    with ModelRegistry.open(stack.settings) as registry:
        assert registry.get(stack.good).status is ModelStatus.STABLE
