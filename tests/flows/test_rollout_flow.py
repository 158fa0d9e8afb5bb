"""Canary rollouts end to end: a real broker, classifier and rollout processes, and a real
Prometheus server (Debian's ``prometheus``) whose metrics decide every step."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.kafka import Output, create_producer
from shared.kafka.batch import produce_all
from shared.messages import Classification, ContentItem
from shared.ml.training import train
from shared.registry import ModelRegistry, ModelStatus
from shared.settings import Settings
from tests.fixtures.data import VOCAB, synthetic_rows, write_rows
from tests.fixtures.kafka import read_topic
from tests.fixtures.services import ServiceProcess, port, service_env
from tests.services.rollout.helpers import PrometheusServer

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus, pytest.mark.slow]
KEY = "rollout-admin-key-for-tests"
TAGS = tuple(VOCAB)


@dataclass
class Stack:
    settings: Settings
    classifier: ServiceProcess
    rollout: ServiceProcess
    prometheus: PrometheusServer
    stable: str
    good: str
    bad: str

    def cli(self, *args: str) -> dict[str, Any]:
        env = {
            **os.environ,
            "TAGSTREAM_ROLLOUT_URL": self.rollout.url,
            "TAGSTREAM_ROLLOUT_ADMIN_KEY": KEY,
        }
        done = subprocess.run(
            [sys.executable, "-m", "tagstream.cli.main", "rollout", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if "--json" in args else {"out": done.stdout}

    def api(self, method: str, path: str) -> dict[str, Any]:
        """The rollout API straight over HTTP: quicker than a CLI process on a busy machine."""
        response = httpx.request(
            method, self.rollout.url + path, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def newest(self) -> dict[str, Any]:
        rollout: dict[str, Any] = self.api("GET", "/v1/rollouts")["rollouts"][0]
        return rollout

    async def until(self, condition: Any, within: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            rollout = await asyncio.to_thread(self.newest)
            if condition(rollout):
                return rollout
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {within}s: {json.dumps(rollout)[:3000]}")
            await asyncio.sleep(0.5)


def item(n: int) -> ContentItem:
    words = VOCAB[TAGS[n % len(TAGS)]]
    return ContentItem(
        item_id=uuid.uuid4().hex,
        title=" ".join(words[(n + k) % len(words)] for k in range(4)),
        description="",
        received_at=datetime.now(UTC),
    )


@contextlib.asynccontextmanager
async def streaming(settings: Settings, rate: float = 150.0) -> AsyncIterator[list[str]]:
    """Produce clear items to content.raw at about ``rate``/s until the block ends."""
    sent: list[str] = []
    producer = create_producer(settings)
    await producer.start()
    stop = asyncio.Event()

    async def feed() -> None:
        n = 0
        while not stop.is_set():
            batch = [item(n + k) for k in range(15)]
            n += len(batch)
            await produce_all(
                producer,
                [Output(settings.topic_raw, i.item_id.encode(), i.encode()) for i in batch],
            )
            sent.extend(i.item_id for i in batch)
            await asyncio.sleep(len(batch) / rate)

    task = asyncio.create_task(feed())
    try:
        yield sent
    finally:
        stop.set()
        await task
        await producer.stop()


def train_versions(settings: Settings, tmp_path: Path) -> tuple[str, str, str]:
    stable = train(settings, data_location=str(write_rows(tmp_path / "a.csv", synthetic_rows())))
    more = synthetic_rows(per_tag=45, seed=1)  # retrained on more data: a good candidate
    good = train(settings, data_location=str(write_rows(tmp_path / "b.csv", more)))
    shifted = {tag: TAGS[(n + 1) % len(TAGS)] for n, tag in enumerate(TAGS)}
    wrong = [{**row, "tag": shifted[row["tag"]]} for row in synthetic_rows(seed=2)]
    bad = train(settings, data_location=str(write_rows(tmp_path / "c.csv", wrong)))
    return stable.version.version, good.version.version, bad.version.version


@pytest.fixture
def stack(topics: Settings, tmp_path: Path) -> Iterator[Stack]:
    settings = topics
    stable, good, bad = train_versions(settings, tmp_path)
    classifier_port, rollout_port = port(), port()
    prometheus = PrometheusServer(
        tmp_path / "prometheus", [f"127.0.0.1:{classifier_port}", f"127.0.0.1:{rollout_port}"]
    )
    env = service_env(
        settings,
        TAGSTREAM_CLASSIFIER_PORT=classifier_port,
        TAGSTREAM_CLASSIFIER_MODEL_POLL_SECONDS="2",
        TAGSTREAM_ROLLOUT_PORT=rollout_port,
        TAGSTREAM_ROLLOUT_ADMIN_KEYS=KEY,
        TAGSTREAM_ROLLOUT_AUTO_START="false",  # these rollouts are started by hand
        TAGSTREAM_PROMETHEUS_URL=prometheus.base_url,
        TAGSTREAM_ROLLOUT_STEPS="shadow,50,100",
        TAGSTREAM_ROLLOUT_INTERVAL_SECONDS="4",
        TAGSTREAM_ROLLOUT_WINDOW_SECONDS="4",
        TAGSTREAM_ROLLOUT_TICK_SECONDS="0.25",
        TAGSTREAM_ROLLOUT_MIN_PREDICTIONS="20",
        TAGSTREAM_ROLLOUT_FAILURE_LIMIT="2",
        TAGSTREAM_ROLLOUT_INCONCLUSIVE_LIMIT="2",
        TAGSTREAM_LOG_LEVEL="INFO",
    )
    classifier = ServiceProcess("classifier", env, int(classifier_port), tmp_path)
    rollout = ServiceProcess("rollout", env, int(rollout_port), tmp_path)
    try:
        classifier.start("/readyz")
        rollout.start("/readyz")
        yield Stack(settings, classifier, rollout, prometheus, stable, good, bad)
    finally:
        rollout.stop()
        classifier.stop()
        prometheus.stop()


async def decisions(settings: Settings, count: int) -> list[Classification]:
    values = await read_topic(settings, settings.topic_classified, expect=count, within=60)
    return [Classification.decode(v) for v in values]


async def serving_info(stack: Stack) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(stack.classifier.url + "/metrics")).text


async def test_a_good_candidate_is_promoted_while_items_stream_and_none_is_lost(
    stack: Stack,
) -> None:
    async with streaming(stack.settings) as sent:
        await asyncio.sleep(2)
        started = await asyncio.to_thread(stack.cli, "start", stack.good)
        assert "shadow" in started["out"]
        done = await stack.until(lambda r: r["state"] in ("promoted", "rolled_back"), 120, "end")
        await asyncio.sleep(3)  # a few batches on the promoted model
    assert done["state"] == "promoted", json.dumps(done)[:3000]
    assert [a["step"] for a in reversed(done["analyses"])] == ["shadow", "50%", "100%"]
    for analysis in done["analyses"]:
        assert analysis["verdict"] == "pass"
        checks = {c["check"]: c for c in analysis["checks"]}
        assert checks["traffic"]["values"]["canary"] >= 20
        for name in ("error_rate", "latency_p99", "review_share", "prediction_shift"):
            check = checks[name]
            assert check["verdict"] == "pass"
            assert check["queries"]
            assert check["threshold"]
            assert all(v is not None for v in check["values"].values())
        assert checks["shadow_agreement"]["values"]["agreement"] > 0.9
        assert checks["online_accuracy"]["verdict"] == "skipped"  # no gold labels here

    # the classifier serves the candidate as stable, without a restart
    deadline = time.monotonic() + 15
    while f'model_info{{model_version="{stack.good}",role="stable"}} 1.0' not in (
        await serving_info(stack)
    ):
        assert time.monotonic() < deadline, "the classifier did not switch to the new stable"
        await asyncio.sleep(0.5)

    # hot swaps under load: every item decided exactly once, by the models of its batch
    found = await decisions(stack.settings, len(sent))
    per_item = Counter(d.item_id for d in found)
    assert set(per_item) == set(sent), "an item was lost"
    assert set(per_item.values()) == {1}, "an item was decided twice"
    roles = Counter((d.model_version, d.role) for d in found)
    assert roles[(stack.good, "canary")] > 0  # it decided its share at 50% and 100%
    assert roles[(stack.stable, "stable")] > 0
    assert roles[(stack.good, "stable")] > 0  # and everything once promoted
    # the version that did not decide an item has its answer on content.shadow: the
    # canary's while stable decides (shadow, 50%), stable's where the canary decides
    answered = [Classification.decode(v) for v in await read_topic(
        stack.settings, stack.settings.topic_shadow, expect=len(sent), within=10
    )]  # fmt: skip
    assert {(a.model_version, a.role) for a in answered} == {
        (stack.good, "canary"),
        (stack.stable, "stable"),
    }
    by_canary = {d.item_id for d in found if d.role == "canary"}
    assert by_canary <= {a.item_id for a in answered if a.role == "stable"}
    with ModelRegistry.open(stack.settings) as registry:
        assert registry.get(stack.good).status is ModelStatus.STABLE
        assert registry.get(stack.stable).status is ModelStatus.RETIRED


async def test_a_bad_candidate_is_rolled_back_having_decided_nothing(stack: Stack) -> None:
    async with streaming(stack.settings) as sent:
        await asyncio.sleep(2)
        await asyncio.to_thread(stack.cli, "start", stack.bad)
        done = await stack.until(lambda r: r["state"] in ("promoted", "rolled_back"), 90, "end")
    assert done["state"] == "rolled_back"
    assert done["failures"] == 2
    assert {a["step"] for a in done["analyses"]} == {"shadow"}  # its first step's share: none
    failed = {c["check"] for a in done["analyses"] for c in a["checks"] if c["verdict"] == "fail"}
    # shifted labels keep the tag shares (a permutation) but disagree on every item
    assert "shadow_agreement" in failed
    found = await decisions(stack.settings, len(sent))
    assert stack.bad not in {d.model_version for d in found}
    with ModelRegistry.open(stack.settings) as registry:
        assert registry.get(stack.bad).status is ModelStatus.ROLLED_BACK
        assert registry.traffic().canary is None
    metrics = await serving_info(stack)
    assert f'model_version="{stack.bad}",role="canary"}} 1.0' not in metrics


async def test_prometheus_gone_mid_rollout_holds_then_rolls_back_never_promotes(
    stack: Stack,
) -> None:
    async with streaming(stack.settings):
        await read_topic(stack.settings, stack.settings.topic_classified, expect=20, within=60)
        await asyncio.to_thread(stack.cli, "start", stack.good)
        await stack.until(lambda r: r["step_index"] >= 1, 60, "the first step to pass")
        # Paused while Prometheus goes, so that no analysis straddles its stop: each one after
        # the resume ran with Prometheus gone from its first query, however late this test
        # got here on a loaded machine (an analysis of the step before would not count).
        await asyncio.to_thread(stack.api, "POST", "/v1/rollouts/pause")
        paused = await asyncio.to_thread(stack.newest)  # with its analyses so far
        assert paused["state"] == "paused", paused
        stack.prometheus.stop()
        await asyncio.to_thread(stack.api, "POST", "/v1/rollouts/resume")
        done = await stack.until(lambda r: r["state"] in ("promoted", "rolled_back"), 60, "end")
    assert done["state"] == "rolled_back"
    assert "inconclusive" in done["reason"]
    assert len(done["analyses"]) == len(paused["analyses"]) + 2, done["analyses"]
    after = done["analyses"][:2]  # newest first: the two after the resume
    assert [a["verdict"] for a in after] == ["inconclusive", "inconclusive"]
    assert after[0]["action"].startswith("roll back")
    assert after[1]["action"] == f"hold at {paused['step']}"
    for analysis in after:  # no answer at all: nothing passed, nothing failed
        assert {c["verdict"] for c in analysis["checks"]} <= {"inconclusive", "skipped"}
    async with httpx.AsyncClient() as client:
        rollout_metrics = (await client.get(stack.rollout.url + "/metrics")).text
    assert "tagstream_rollout_prometheus_up 0.0" in rollout_metrics
    assert 'tagstream_rollout_rollouts_total{outcome="promoted"} 0.0' in rollout_metrics
