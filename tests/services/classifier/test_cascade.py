"""Stage 2 in the classifier: it re-decides only what stage 1 sends to review, says so in
every decision, and can be switched off. A tiny cascade (tiny random encoder) trained into
a real registry."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from services.classifier.metrics import ClassifierMetrics
from services.classifier.model import CascadeOptions, LoadedModel, load_serving
from services.classifier.service import Routing, classify_batch
from shared.messages import NEEDS_REVIEW, Classification
from shared.registry import ModelRegistry
from shared.serving.cascade import Stage2
from shared.serving.text import prepare_text
from shared.settings import Settings
from tests.fixtures.db import migrated
from tests.services.classifier.conftest import TAGS, clear_item, item, record, train_tiny

ROUTING = Routing(
    approved_tags=TAGS, topic_classified="classified", topic_review="review", topic_dlq="dlq"
)
UNSURE = [
    item(title="Hello world", description="Nothing to see here."),
    item(title="Some thoughts", description="w1 w2 w3"),
    item(title="Notes of the week", description="w7 w8 with a w9"),
]


@pytest.fixture(scope="module")
def registry_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp_path = tmp_path_factory.mktemp("cascade")
    settings = Settings(
        environment="test",
        registry_dir=tmp_path / "registry",
        database_url=migrated(f"sqlite:///{tmp_path / 'tagstream.db'}"),
    )
    train_tiny(settings, tmp_path)
    return settings


def serve(settings: Settings, options: CascadeOptions) -> Iterator[LoadedModel]:
    with ModelRegistry.open(settings) as registry:
        serving = load_serving(registry, None, options)
        assert serving is not None
        yield serving.stable


@pytest.fixture(scope="module")
def cascade(registry_settings: Settings) -> Iterator[LoadedModel]:
    yield from serve(registry_settings, CascadeOptions(enabled=True))


def decisions(model: LoadedModel, items: list) -> dict[str, Classification]:
    records = [record(i.encode(), offset=n) for n, i in enumerate(items)]
    result = classify_batch(records, model, ROUTING)
    found = [Classification.decode(o.value) for o in result.outputs if o.topic == "classified"]
    return {c.item_id: c for c in found}


def test_stage_2_scores_only_what_stage_1_was_unsure_of(cascade: LoadedModel) -> None:
    assert cascade.stage2 is not None
    clear = [clear_item(n) for n in range(4)]
    decided = decisions(cascade, [*clear, *UNSURE])
    assert {decided[i.item_id].stage for i in clear} == {1}
    assert all(decided[i.item_id].route == "auto" for i in clear)
    expected = cascade.stage2.predict_proba([prepare_text(i.title, i.description) for i in UNSURE])
    for sent, proba in zip(UNSURE, expected, strict=True):
        decision = decided[sent.item_id]
        assert decision.stage == 2
        # stage 2's own probabilities, not stage 1's
        got = [decision.probabilities[c] for c in cascade.stage2.classes]
        np.testing.assert_allclose(got, proba, atol=1e-6)
        threshold = cascade.stage2.thresholds[cascade.stage2.classes[int(proba.argmax())]]
        assert (decision.route == "auto") == (float(proba.max()) >= threshold)


def test_stage_2_accepts_what_it_is_sure_of(cascade: LoadedModel) -> None:
    assert cascade.stage2 is not None
    lenient = dataclasses.replace(
        cascade.stage2.manifest, thresholds=dict.fromkeys(cascade.stage2.classes, 0.0)
    )
    sure = dataclasses.replace(
        cascade, stage2=Stage2(cascade.stage2.encoder, cascade.stage2.head, lenient)
    )
    decided = decisions(sure, UNSURE)
    for sent in UNSURE:
        assert (decided[sent.item_id].route, decided[sent.item_id].stage) == ("auto", 2)
        assert decided[sent.item_id].tag in TAGS


def test_switched_off_stage_1_doubts_go_to_review(registry_settings: Settings) -> None:
    for model in serve(registry_settings, CascadeOptions(enabled=False)):
        assert model.stage2 is None
        decided = decisions(model, UNSURE)
        assert {(d.route, d.tag, d.stage) for d in decided.values()} == {
            ("review", NEEDS_REVIEW, 1)
        }


def test_metrics_count_items_per_stage(cascade: LoadedModel) -> None:
    metrics = ClassifierMetrics(CollectorRegistry())
    records = [record(i.encode(), offset=n) for n, i in enumerate([clear_item(0), *UNSURE])]
    result = classify_batch(records, cascade, ROUTING)
    metrics.record_batch(len(records), result, 0.01)
    registry = metrics.registry
    total = {
        stage: sum(
            registry.get_sample_value(
                "tagstream_classifier_stage_items_total",
                {"model_version": cascade.name, "role": "stable", "stage": stage, "route": r},
            )
            or 0.0
            for r in ("auto", "review")
        )
        for stage in ("1", "2")
    }
    assert total == {"1": 1.0, "2": float(len(UNSURE))}
    count = registry.get_sample_value(
        "tagstream_classifier_stage2_seconds_count",
        {"model_version": cascade.name, "role": "stable"},
    )
    assert count == 1.0
