"""The classifier's logic on plain records, with a tiny model trained into a real registry."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import CollectorRegistry

from services.classifier.metrics import ClassifierMetrics
from services.classifier.model import LoadedModel, load_serving
from services.classifier.service import (
    STAGE_DECODE,
    InferenceErrorKind,
    Routing,
    classify_batch,
)
from shared.kafka import Output
from shared.kafka.dlq import MAX_KEPT_VALUE_BYTES
from shared.messages import (
    MAX_MESSAGE_BYTES,
    NEEDS_REVIEW,
    Classification,
    DeadLetter,
    ReviewRequest,
)
from shared.registry import ModelRegistry
from shared.settings import Settings
from tests.fixtures.db import migrated
from tests.services.classifier.conftest import (
    TAGS,
    clear_item,
    item,
    record,
    train_tiny,
    unclear_item,
)

ROUTING = Routing(
    approved_tags=TAGS,
    topic_classified="classified",
    topic_review="review",
    topic_dlq="dlq",
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedModel]:
    tmp_path = tmp_path_factory.mktemp("model")
    settings = Settings(
        environment="test",
        registry_dir=tmp_path / "registry",
        database_url=migrated(f"sqlite:///{tmp_path / 'tagstream.db'}"),
    )
    train_tiny(settings, tmp_path)
    with ModelRegistry.open(settings) as registry:
        serving = load_serving(registry)
        assert serving is not None
        yield serving.stable


def on(outputs: list[Output], topic: str) -> list[bytes]:
    return [o.value for o in outputs if o.topic == topic]


def test_confident_items_are_auto_tagged_and_unsure_ones_go_to_review(
    model: LoadedModel,
) -> None:
    clear = [clear_item(n) for n in range(8)]
    unsure = unclear_item()
    records = [record(i.encode(), offset=n) for n, i in enumerate([*clear, unsure])]

    result = classify_batch(records, model, ROUTING)

    decisions = {c.item_id: c for c in map(Classification.decode, on(result.outputs, "classified"))}
    assert set(decisions) == {i.item_id for i in [*clear, unsure]}
    for n, sent in enumerate(clear):
        decision = decisions[sent.item_id]
        assert decision.route == "auto"
        assert decision.tag == decision.predicted_tag == TAGS[n % len(TAGS)]
        assert decision.confidence >= model.thresholds[decision.tag]
        assert decision.model_version == model.name
        assert decision.role == "stable"
        assert 0 <= decision.latency_ms < 60_000
        assert set(decision.probabilities) == set(TAGS)
    review = decisions[unsure.item_id]
    assert (review.route, review.tag) == ("review", NEEDS_REVIEW)
    assert review.predicted_tag in TAGS
    (request,) = map(ReviewRequest.decode, on(result.outputs, "review"))
    assert request.item_id == unsure.item_id
    assert request.reason == "low_confidence"
    assert request.title == unsure.title
    assert request.url == unsure.url
    assert request.probabilities == review.probabilities
    assert request.confidence == review.confidence
    assert result.items_scored == 9
    assert not result.rejected
    assert [o.key for o in result.outputs if o.topic == "classified"] == [
        i.item_id.encode() for i in [*clear, unsure]
    ]


def test_a_tag_outside_the_approved_list_is_never_emitted(model: LoadedModel) -> None:
    approved = tuple(t for t in TAGS if t != "other")
    routing = Routing(approved, "classified", "review", "dlq")
    items = [clear_item(n) for n in range(12)]  # every fourth is clearly "other"

    result = classify_batch([record(i.encode()) for i in items], model, routing)

    decisions = list(map(Classification.decode, on(result.outputs, "classified")))
    assert len(decisions) == 12
    emitted = {d.tag for d in decisions}
    assert "other" not in emitted
    assert emitted <= {*approved, NEEDS_REVIEW}
    others = [d for d in decisions if d.item_id in {i.item_id for i in items[3::4]}]
    assert len(others) == 3
    for decision in others:
        assert (decision.route, decision.tag, decision.predicted_tag) == (
            "review",
            NEEDS_REVIEW,
            None,
        )
        assert "other" not in decision.probabilities
    requests = list(map(ReviewRequest.decode, on(result.outputs, "review")))
    assert {r.item_id for r in requests} == {d.item_id for d in others}
    assert {r.reason for r in requests} == {"unapproved_tag"}
    assert all(r.predicted_tag is None and "other" not in r.probabilities for r in requests)
    assert sum(d.route == "auto" for d in decisions) == 9


def test_an_approved_tag_the_model_lacks_has_probability_zero(model: LoadedModel) -> None:
    routing = Routing((*TAGS, "robotics"), "classified", "review", "dlq")
    result = classify_batch([record(clear_item(0).encode())], model, routing)
    (decision,) = map(Classification.decode, on(result.outputs, "classified"))
    assert decision.probabilities["robotics"] == 0.0
    assert decision.route == "auto"


def test_an_item_from_a_newer_producer_is_decided_not_dead_lettered(model: LoadedModel) -> None:
    """A field added by a newer ingest (same schema_version) is ignored, not dead-lettered."""
    sent = clear_item(0)
    newer = json.dumps({**json.loads(sent.encode()), "language": "en"}).encode()

    result = classify_batch([record(newer)], model, ROUTING)

    assert not result.rejected
    (decision,) = map(Classification.decode, on(result.outputs, "classified"))
    assert decision.item_id == sent.item_id
    assert decision.route == "auto"


POISON = {
    "invalid JSON": (b"{not json", "invalid_json"),
    "schema_version 2": (
        json.dumps({**json.loads(item("x2").encode()), "schema_version": 2}).encode(),
        "unsupported_version",
    ),
    "missing title": (
        json.dumps(
            {k: v for k, v in json.loads(item("x3").encode()).items() if k != "title"}
        ).encode(),
        "invalid_field",
    ),
    "oversized": (b" " * (MAX_MESSAGE_BYTES + 1), "oversized"),
    "no value": (None, "empty"),
    "not an object": (b"[1, 2]", "not_an_object"),
    "title too long": (item("x7", title="word " * 100).encode(), "invalid_field"),
}


REASON_STARTS = {
    "invalid_json": "invalid JSON: ",
    "unsupported_version": "unsupported schema_version 2 for ContentItem",
    "invalid_field": "invalid title: ",
    "oversized": "oversized: ",
    "empty": "empty record (no value)",
    "not_an_object": "invalid message: a JSON object is expected",
}
"""The dead-letter text of each kind, as it was when the kind was read off this text."""


@pytest.mark.parametrize("case", POISON)
def test_poison_records_become_dead_letters_and_the_batch_goes_on(
    model: LoadedModel, case: str
) -> None:
    value, kind = POISON[case]
    good = [clear_item(0), clear_item(1)]
    records = [
        record(good[0].encode(), offset=0),
        record(value, offset=1, key=b"k"),
        record(good[1].encode(), offset=2),
    ]

    result = classify_batch(records, model, ROUTING)

    assert {c.item_id for c in map(Classification.decode, on(result.outputs, "classified"))} == {
        g.item_id for g in good
    }
    (raw,) = on(result.outputs, "dlq")
    letter = DeadLetter.decode(raw)
    assert letter.stage == STAGE_DECODE
    assert letter.error_kind == kind
    assert (letter.topic, letter.partition, letter.offset) == ("content.raw", 0, 1)
    assert letter.original_key == b"k"
    assert letter.error.startswith(REASON_STARTS[kind])
    if value is not None and len(value) <= MAX_KEPT_VALUE_BYTES:
        assert letter.original_value == value
    elif value is not None:
        assert letter.original_value == value[:MAX_KEPT_VALUE_BYTES]
        assert "truncated" in letter.error
    (rejected,) = result.rejected
    assert (rejected.stage, rejected.reason_kind, rejected.offset) == (STAGE_DECODE, kind, 1)
    assert letter.error.startswith(rejected.reason)
    metrics = ClassifierMetrics(CollectorRegistry())
    metrics.record_batch(3, result, 0.1)
    labels = {"stage": STAGE_DECODE, "reason_kind": kind}
    assert metrics.registry.get_sample_value("tagstream_classifier_dlq_total", labels) == 1


def test_a_batch_of_only_poison_produces_only_dead_letters(model: LoadedModel) -> None:
    result = classify_batch([record(b"{"), record(b"")], model, ROUTING)
    assert {o.topic for o in result.outputs} == {"dlq"}
    assert len(result.outputs) == 2
    assert result.items_scored == 0


class _Broken:
    """A model whose batch run fails and which cannot score one particular text."""

    def __init__(self, inner: LoadedModel) -> None:
        self.inner = inner.tagger

    @property
    def classes(self) -> list[str]:
        return self.inner.classes

    def predict_proba(self, texts: Sequence[str]) -> npt.NDArray[np.floating[Any]]:
        if any("cursed" in t for t in texts):
            raise RuntimeError("cannot score this")
        return self.inner.predict_proba(texts)


def test_an_item_the_model_cannot_score_is_dead_lettered_alone(model: LoadedModel) -> None:
    broken = LoadedModel(version=model.version, tagger=_Broken(model))
    cursed = item("cursed-1", title="Cursed text")
    records = [record(clear_item(0).encode()), record(cursed.encode(), offset=1)]

    result = classify_batch(records, broken, ROUTING)

    assert len(on(result.outputs, "classified")) == 1
    (letter,) = map(DeadLetter.decode, on(result.outputs, "dlq"))
    assert letter.stage == "classifier.inference"
    assert letter.error_kind == "inference_error"
    assert "cannot score this" in letter.error
    assert letter.error.startswith("inference failed: RuntimeError: ")
    assert result.rejected[0].item_id == "cursed-1"
    assert result.rejected[0].reason_kind is InferenceErrorKind.FAILED
    assert result.rejected[0].reason_kind == "inference_error"
