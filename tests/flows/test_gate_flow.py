"""Retrains that ship themselves, end to end: `tagstream model train` processes, a real
broker, a real rollout service process and a real Prometheus. Once the stable version
exists no rollout command is typed: a candidate that passes the offline gate is rolled
out, one that fails it is rejected, and a candidate registered while the rollout service
was down is found when it comes back."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client import CollectorRegistry

from services.feedback.metrics import FeedbackMetrics
from services.feedback.repository import FeedbackStore
from services.feedback.retraining import FeedbackMonitor
from services.feedback.settings import FeedbackSettings
from shared.db.session import make_engine
from shared.ml.training import train
from shared.registry import ModelRegistry
from shared.settings import Settings
from tests.fixtures.data import VOCAB, synthetic_rows, write_rows
from tests.fixtures.services import ServiceProcess, port, service_env
from tests.services.feedback.helpers import content, label
from tests.services.rollout.helpers import PrometheusServer

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus, pytest.mark.slow]
KEY = "rollout-admin-key-for-tests"
T = TypeVar("T")


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    rollout: ServiceProcess
    tmp_path: Path

    def tagstream(self, *args: str) -> str:
        env = {**self.env, "TAGSTREAM_ROLLOUT_URL": self.rollout.url}
        env["TAGSTREAM_ROLLOUT_ADMIN_KEY"] = KEY
        done = subprocess.run(
            [sys.executable, "-m", "tagstream.cli.main", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def train(self, name: str, rows: list[dict[str, str]]) -> str:
        data = write_rows(self.tmp_path / name, rows)
        version = self.tagstream("model", "train", "--data", str(data)).strip().splitlines()[-1]
        assert version.startswith("v")
        return version

    def rollouts(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self.tagstream("rollout", "status", "--json"))[
            "rollouts"
        ]
        return found

    def show(self, version: str) -> dict[str, Any]:
        shown: dict[str, Any] = json.loads(self.tagstream("model", "show", version, "--json"))
        return shown


def until(condition: Callable[[], T | None], within: float, what: str) -> T:
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {within}s")
        time.sleep(0.5)


def shuffled(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    tags = [row["tag"] for row in rows]
    random.Random(5).shuffle(tags)
    return [{**row, "tag": tag} for row, tag in zip(rows, tags, strict=True)]


@pytest.fixture
def stack(topics: Settings, tmp_path: Path) -> Iterator[Stack]:
    settings = topics
    train(settings, data_location=str(write_rows(tmp_path / "a.csv", synthetic_rows(60))))
    # the stable version's data: the feedback retrain trains on it again, plus gold
    rollout_port = port()
    prometheus = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{rollout_port}"])
    env = service_env(
        settings,
        TAGSTREAM_ROLLOUT_PORT=rollout_port,
        TAGSTREAM_ROLLOUT_ADMIN_KEYS=KEY,
        TAGSTREAM_PROMETHEUS_URL=prometheus.base_url,
        TAGSTREAM_ROLLOUT_AUTO_START="true",
        # A poll far beyond the test: a rollout within seconds comes from the event (or
        # the start-up reconciliation), not from polling.
        TAGSTREAM_ROLLOUT_AUTO_START_POLL_SECONDS="3600",
        TAGSTREAM_ROLLOUT_STEPS="shadow,100",
        TAGSTREAM_ROLLOUT_INTERVAL_SECONDS="3600",
        TAGSTREAM_LOG_LEVEL="INFO",
    )
    rollout = ServiceProcess("rollout", env, int(rollout_port), tmp_path)
    try:
        yield Stack(settings, env, rollout, tmp_path)
    finally:
        rollout.stop()
        prometheus.stop()


def test_retrains_are_gated_and_rolled_out_or_rejected_with_no_command_typed(
    stack: Stack,
) -> None:
    # Registered while the rollout service is down: its announcement is missed.
    missed = stack.train("b.csv", synthetic_rows(100, seed=1, mark=" take 1"))
    assert stack.show(missed)["gate"]["verdict"] == "passed"
    stack.rollout.start("/readyz")
    first = until(
        lambda: next((r for r in stack.rollouts() if r["version"] == missed), None),
        within=30,
        what="rollout of the candidate registered while the service was down",
    )
    assert first["state"] == "shadow"
    assert first["reason"].startswith("started automatically: offline gate passed")
    assert stack.show(missed)["status"] == "canary"

    # A worse retrain (labels shuffled) is announced, fails the gate and is rejected.
    worse = stack.train("c.csv", shuffled(synthetic_rows(100, seed=2, mark=" take 2")))
    shown = until(
        lambda: (s := stack.show(worse))["status"] == "rejected" and s,
        within=30,
        what="rejection of the worse candidate",
    )
    assert shown["gate"]["verdict"] == "failed"
    assert shown["gate"]["overall"]["difference"] < 0
    assert [r["version"] for r in stack.rollouts()] == [missed]

    # The operator ends the first rollout; the next sound retrain starts on its event.
    stack.tagstream("rollout", "abort")
    sound = stack.train("d.csv", synthetic_rows(100, seed=3, mark=" take 3"))
    newest = until(
        lambda: (r := stack.rollouts()[0])["version"] == sound and r,
        within=30,
        what="rollout of the announced candidate",
    )
    assert newest["state"] == "shadow"
    assert stack.show(sound)["gate"]["stable_version"] == newest["stable_version"]
    # One rollout per candidate: the aborted one was not started again.
    assert [r["version"] for r in stack.rollouts()] == [sound, missed]


async def test_a_feedback_triggered_retrain_is_gated_and_rolled_out_by_itself(
    stack: Stack,
) -> None:
    """The feedback service's trigger (its monitor's tick, as its loop runs it) trains in a
    child process, which gates, registers and announces; the rollout service does the rest."""
    await asyncio.to_thread(stack.rollout.start, "/readyz")
    s = stack.settings
    settings = FeedbackSettings(
        environment="test",
        kafka_bootstrap_servers=s.kafka_bootstrap_servers,
        topic_models=s.topic_models,
        database_url=s.database_url,
        registry_dir=s.registry_dir,
        data_location=str(stack.tmp_path / "a.csv"),
        feedback_retrain_min_new_labels=40,
        feedback_retrain_cooldown_seconds=0,
    )
    engine = make_engine(settings.database_url)
    try:
        registry = ModelRegistry(engine, settings.registry_dir, settings.model_name)
        store = FeedbackStore(engine, settings.approved_tags)
        monitor = FeedbackMonitor(settings, store, registry, FeedbackMetrics(CollectorRegistry()))
        words = VOCAB["mlops"]
        store.apply_batch(
            items=[content(f"g{n}", title=f"{words[n % 6]} gold item {n:02d}") for n in range(40)],
            labels=[label(f"g{n}", "mlops", label_id=f"L{n}") for n in range(40)],
        )
        await monitor.tick()
        assert monitor.training is not None
        outcome = await monitor.training
    finally:
        engine.dispose()
    assert outcome.result == "ok", outcome.error
    version = outcome.version
    assert version is not None
    gate = (await asyncio.to_thread(stack.show, version))["gate"]
    assert gate["verdict"] == "passed", gate["reason"]
    assert gate["golden_items"] > 0  # the gold labels' golden share, never trained on
    rollout = await asyncio.to_thread(
        until,
        lambda: next((r for r in stack.rollouts() if r["version"] == version), None),
        30,
        "rollout of the feedback-triggered candidate",
    )
    assert rollout["state"] == "shadow"
