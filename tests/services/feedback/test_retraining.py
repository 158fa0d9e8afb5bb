"""The retraining trigger end to end on a tiny dataset: a stable version, N gold labels,
then a registered candidate whose lineage names the labels."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.feedback import retraining
from services.feedback.metrics import FeedbackMetrics
from services.feedback.repository import FeedbackStore
from services.feedback.retraining import FeedbackMonitor, RunOutcome, TriggerInputs, decide
from services.feedback.settings import FeedbackSettings
from shared.db.session import make_engine
from shared.messages import ModelEvent
from shared.ml.gold import label_ids_hash
from shared.ml.training import train
from shared.ml.training_job import TrainingOutcome, TrainingRequest
from shared.registry import ModelRegistry, ModelVersion
from shared.settings import Settings
from tests.fixtures.data import VOCAB
from tests.fixtures.db import migrated
from tests.fixtures.kafka import read_topic
from tests.services.feedback.helpers import content, label

N = 8


def feedback_settings(tmp_path: Path, data: Path, **extra: object) -> FeedbackSettings:
    return FeedbackSettings(
        environment="test",
        database_url=migrated(f"sqlite:///{tmp_path / 'db' / 'tagstream.db'}"),
        registry_dir=tmp_path / "registry",
        data_location=str(data),
        feedback_retrain_min_new_labels=N,
        **extra,  # type: ignore[arg-type]
    )


def test_decide_rules() -> None:
    s = FeedbackSettings(
        environment="test", feedback_retrain_min_new_labels=10, feedback_drift_threshold=0.3
    )
    assert decide(TriggerInputs(15, 5, None, None), s) == "labels"
    assert decide(TriggerInputs(14, 5, None, None), s) is None
    assert decide(TriggerInputs(0, 0, 0.31, None), s) == "drift"
    assert decide(TriggerInputs(0, 0, 0.3, None), s) is None
    assert decide(TriggerInputs(99, 0, 0.9, 10.0), s) is None  # cooldown


@dataclass(frozen=True)
class Retrained:
    stable: ModelVersion
    outcome: RunOutcome
    store: FeedbackStore
    metrics: FeedbackMetrics


async def retrain_on_new_gold(settings: FeedbackSettings) -> Retrained:
    """A stable version, then N gold labels: the monitor's tick trains a candidate."""
    stable = train(settings).version
    assert stable.status == "stable"
    engine = make_engine(settings.database_url)
    registry = ModelRegistry(engine, settings.registry_dir, settings.model_name)
    store = FeedbackStore(engine, settings.approved_tags)
    metrics = FeedbackMetrics(CollectorRegistry())
    monitor = FeedbackMonitor(settings, store, registry, metrics)
    try:
        words = VOCAB["mlops"]
        gold = [label(f"g{n}", "mlops", label_id=f"L{n}") for n in range(N)]
        store.apply_batch(
            items=[content(f"g{n}", title=f"{words[n % 6]} gold item {n:02d}") for n in range(N)],
            labels=gold[:-1],
        )
        await monitor.tick()
        assert monitor.training is None  # N - 1 new labels: not yet

        store.apply_batch(labels=gold[-1:])
        await monitor.tick()
        assert monitor.training is not None
        outcome = await monitor.training
    finally:
        engine.dispose()
    return Retrained(stable, outcome, store, metrics)


async def test_enough_new_gold_labels_register_a_candidate_with_lineage(
    tmp_path: Path, tiny_dataset: Path
) -> None:
    settings = feedback_settings(tmp_path, tiny_dataset, feedback_retrain_cooldown_seconds=0)
    retrained = await retrain_on_new_gold(settings)
    stable, outcome, store, metrics = (
        retrained.stable,
        retrained.outcome,
        retrained.store,
        retrained.metrics,
    )

    assert outcome.result == "ok", outcome.error
    assert outcome.trigger == "labels"
    assert outcome.label_count == N
    with ModelRegistry.open(settings) as reopened:
        candidate = reopened.get(outcome.version or "")
    assert candidate.status == "candidate"
    assert candidate.parent_version == stable.version
    assert candidate.data_hash != stable.data_hash
    assert candidate.params["gold_labels"] == N
    assert candidate.params["gold_label_ids_hash"] == label_ids_hash(f"L{n}" for n in range(N))
    assert "train only" in candidate.params["gold_split"]
    assert candidate.params["gold_dropped_overlap"] == 0
    assert "gold_label_ids_hash" in candidate.model_card
    split_sizes = candidate.metrics["data"]["split_sizes"]
    assert split_sizes["validation"] == stable.metrics["data"]["split_sizes"]["validation"]
    assert split_sizes["test"] == stable.metrics["data"]["split_sizes"]["test"]
    # Every gold label joins training except the golden share, which the offline gate keeps.
    golden = candidate.params["golden_labels"]
    assert candidate.gate is not None
    assert candidate.gate["golden_items"] == golden
    assert split_sizes["train"] == stable.metrics["data"]["split_sizes"]["train"] + N - golden
    [run] = store.runs()
    assert (run.trigger, run.result, run.label_count, run.version) == (
        "labels",
        "ok",
        N,
        candidate.version,
    )
    sample = metrics.registry.get_sample_value(
        "tagstream_feedback_retrain_runs_total", {"trigger": "labels", "result": "ok"}
    )
    assert sample == 1


@pytest.mark.kafka
async def test_a_feedback_triggered_candidate_is_announced_on_models_events(
    tmp_path: Path, tiny_dataset: Path, topics: Settings
) -> None:
    """Retraining ends in register_candidate, as the CLI does: the candidate is announced."""
    settings = feedback_settings(
        tmp_path,
        tiny_dataset,
        feedback_retrain_cooldown_seconds=0,
        kafka_bootstrap_servers=topics.kafka_bootstrap_servers,
        topic_models=topics.topic_models,
    )
    retrained = await retrain_on_new_gold(settings)
    assert retrained.outcome.result == "ok", retrained.outcome.error
    assert retrained.outcome.status == "candidate"

    (value,) = await read_topic(settings, settings.topic_models, expect=1)
    event = ModelEvent.decode(value)
    assert (event.event, event.version, event.stable_version) == (
        "candidate_registered",
        retrained.outcome.version,
        retrained.stable.version,
    )


async def test_stopping_the_monitor_stops_a_run_and_records_it(
    tmp_path: Path, tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = asyncio.Event()
    real_job = retraining.run_training_job

    async def observed_job(request: TrainingRequest) -> TrainingOutcome:
        return await real_job(request, on_start=lambda _pid: started.set())

    monkeypatch.setattr(retraining, "run_training_job", observed_job)
    settings = feedback_settings(tmp_path, tiny_dataset)
    engine = make_engine(settings.database_url)
    registry = ModelRegistry(engine, settings.registry_dir, settings.model_name)
    store = FeedbackStore(engine, settings.approved_tags)
    monitor = FeedbackMonitor(settings, store, registry, FeedbackMetrics(CollectorRegistry()))
    try:
        task = monitor.start("manual")
        await asyncio.wait_for(started.wait(), 30)  # the training process is running
        await monitor.stop_training()

        assert task.cancelled()
        assert not monitor.running
        [run] = store.runs()
        assert (run.trigger, run.result, run.version) == ("manual", "failed", None)
        assert registry.list_versions() == []
    finally:
        engine.dispose()
