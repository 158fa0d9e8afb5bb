"""Canary and shadow serving: which model decides which item, and what gets recorded."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import CollectorRegistry

from services.classifier.metrics import ClassifierMetrics
from services.classifier.model import LoadedModel, ServingSet, load_serving
from services.classifier.service import CANARY_SALT, Routing, classify_batch, in_share
from shared.messages import Classification
from shared.ml.training import train
from shared.registry import ModelRegistry
from shared.settings import Settings
from tests.fixtures.data import synthetic_rows, write_rows
from tests.fixtures.db import migrated
from tests.services.classifier.conftest import TAGS, clear_item, record

ROUTING = Routing(
    approved_tags=TAGS,
    topic_classified="classified",
    topic_review="review",
    topic_dlq="dlq",
    topic_shadow="shadow",
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelRegistry]:
    """A stable tiny model and a candidate trained on the same texts with shifted labels."""
    tmp_path: Path = tmp_path_factory.mktemp("canary")
    settings = Settings(
        environment="test",
        registry_dir=tmp_path / "registry",
        database_url=migrated(f"sqlite:///{tmp_path / 'tagstream.db'}"),
    )
    rows = synthetic_rows()
    train(settings, data_location=str(write_rows(tmp_path / "good.csv", rows)))
    shifted = {tag: TAGS[(n + 1) % len(TAGS)] for n, tag in enumerate(TAGS)}
    bad = [{**row, "tag": shifted[row["tag"]]} for row in rows]
    train(settings, data_location=str(write_rows(tmp_path / "bad.csv", bad)))
    with ModelRegistry.open(settings) as opened:
        yield opened


@pytest.fixture
def candidate(registry: ModelRegistry) -> Iterator[str]:
    (version,) = [v.version for v in registry.list_versions() if v.status != "stable"]
    yield version
    if registry.get(version).status == "canary":
        registry.set_status(version, "candidate", "test cleanup")


def serving(registry: ModelRegistry, weight: float, shadow: bool, candidate: str) -> ServingSet:
    registry.set_canary(candidate, weight=weight, shadow=shadow, reason="test")
    loaded = load_serving(registry)
    assert loaded is not None
    return loaded


def records(count: int) -> list[Any]:
    return [record(clear_item(n, uuid.uuid4().hex).encode(), offset=n) for n in range(count)]


def decisions(outputs: Sequence[Any], topic: str) -> list[Classification]:
    return [Classification.decode(o.value) for o in outputs if o.topic == topic]


def test_in_shadow_mode_the_stable_model_decides_and_the_canary_is_recorded(
    registry: ModelRegistry, candidate: str
) -> None:
    models = serving(registry, 0.0, True, candidate)
    batch = records(40)

    result = classify_batch(batch, models, ROUTING)

    decided = decisions(result.outputs, "classified")
    shadowed = decisions(result.outputs, "shadow")
    assert len(decided) == len(shadowed) == 40
    assert {d.model_version for d in decided} == {models.stable.name}
    assert {(d.model_version, d.role) for d in shadowed} == {(candidate, "canary")}
    # the shifted-label canary disagrees with the stable model on every clear item
    stats = {s.role: s for s in result.models}
    assert stats["canary"].disagree == 40
    assert stats["canary"].agree == 0
    assert stats["stable"].scored == stats["canary"].scored == 40
    assert sum(stats["canary"].predictions.values()) == 40


def test_the_canary_decides_its_hashed_share_and_each_item_is_decided_once(
    registry: ModelRegistry, candidate: str
) -> None:
    models = serving(registry, 0.25, False, candidate)
    batch = records(400)

    result = classify_batch(batch, models, ROUTING)

    decided = decisions(result.outputs, "classified")
    assert len(decided) == len({d.item_id for d in decided}) == 400
    # the version that did not decide has its answer recorded: both answers for every item
    shadowed = {d.item_id: d for d in decisions(result.outputs, "shadow")}
    assert set(shadowed) == {d.item_id for d in decided}
    for d in decided:
        other = shadowed[d.item_id]
        assert {(d.model_version, d.role), (other.model_version, other.role)} == {
            (candidate, "canary"),
            (models.stable.name, "stable"),
        }
    by_canary = {d.item_id for d in decided if d.model_version == candidate}
    expected = {d.item_id for d in decided if in_share(d.item_id, 0.25, salt=CANARY_SALT)}
    assert by_canary == expected
    assert 0.15 < len(by_canary) / 400 < 0.35
    assert all(d.role == "canary" for d in decided if d.item_id in by_canary)
    # the same items again: the same split (a redelivered item goes to the same model)
    again = decisions(classify_batch(batch, models, ROUTING).outputs, "classified")
    assert {d.item_id for d in again if d.model_version == candidate} == by_canary


def test_weight_one_sends_every_item_to_the_canary(registry: ModelRegistry, candidate: str) -> None:
    models = serving(registry, 1.0, False, candidate)

    decided = decisions(classify_batch(records(20), models, ROUTING).outputs, "classified")

    assert {d.model_version for d in decided} == {candidate}


class _Failing:
    def __init__(self, inner: LoadedModel) -> None:
        self.classes = inner.classes

    def predict_proba(self, texts: Sequence[str]) -> npt.NDArray[np.floating[Any]]:
        raise RuntimeError("broken canary")


def test_items_a_canary_cannot_score_are_decided_by_the_stable_model(
    registry: ModelRegistry, candidate: str
) -> None:
    models = serving(registry, 1.0, False, candidate)
    assert models.canary is not None
    broken = ServingSet(
        stable=models.stable,
        canary=LoadedModel(models.canary.version, _Failing(models.canary), role="canary"),
        canary_weight=1.0,
    )

    result = classify_batch(records(10), broken, ROUTING)

    decided = decisions(result.outputs, "classified")
    assert {d.model_version for d in decided} == {models.stable.name}
    assert len(decided) == 10
    assert not result.rejected
    assert {s.role: s.errors for s in result.models} == {"stable": 0, "canary": 10}


def test_metrics_carry_version_and_role_for_both_models(
    registry: ModelRegistry, candidate: str
) -> None:
    models = serving(registry, 0.5, False, candidate)
    metrics = ClassifierMetrics(CollectorRegistry())
    metrics.serving(models, None)

    result = classify_batch(records(100), models, ROUTING)
    metrics.record_batch(100, result, 0.01)

    r = metrics.registry
    stable, canary = models.stable.name, candidate
    scored = {
        role: sum(
            r.get_sample_value(
                "tagstream_classifier_predictions_total",
                {"model_version": version, "role": role, "tag": tag, "route": route},
            )
            or 0
            for tag in (*TAGS, "unapproved")
            for route in ("auto", "review")
        )
        for version, role in ((stable, "stable"), (canary, "canary"))
    }
    assert scored == {"stable": 100, "canary": 100}
    labels = {"model_version": canary, "role": "canary", "agreement": "disagree"}
    assert r.get_sample_value("tagstream_classifier_agreement_total", labels) == 100
    errors = {"model_version": canary, "role": "canary"}
    assert r.get_sample_value("tagstream_classifier_inference_errors_total", errors) == 0
    assert (
        r.get_sample_value("tagstream_classifier_canary_weight", {"model_version": canary}) == 0.5
    )
    decided = sum(
        r.get_sample_value(
            "tagstream_classifier_items_total",
            {"route": d.route, "tag": d.tag, "model_version": d.model_version, "role": d.role},
        )
        or 0
        for d in {(x.route, x.tag, x.model_version, x.role): x for x in result.decided}.values()
    )
    assert decided == 100


def test_weight_changes_reuse_loaded_models_and_promotion_keeps_the_session(
    registry: ModelRegistry, candidate: str
) -> None:
    first = serving(registry, 0.1, False, candidate)
    registry.set_canary(candidate, weight=0.5, shadow=False, reason="test")
    second = load_serving(registry, first)
    assert second is not None
    assert second is not first
    assert second.canary is not None
    assert first.canary is not None
    assert second.canary.tagger is first.canary.tagger
    assert second.canary_weight == 0.5
    assert load_serving(registry, second) is second  # nothing changed: the same set

    old_stable = registry.traffic().stable
    assert old_stable is not None
    registry.promote(candidate, reason="test")
    try:
        promoted = load_serving(registry, second)
        assert promoted is not None
        assert promoted.canary is None
        assert promoted.stable.name == candidate
        assert promoted.stable.role == "stable"
        assert promoted.stable.tagger is second.canary.tagger
    finally:
        registry.set_status(old_stable, "candidate", "test cleanup")
        registry.promote(old_stable, reason="test cleanup")
        registry.set_status(candidate, "candidate", "test cleanup")
