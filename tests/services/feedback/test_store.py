"""The store on SQLite and PostgreSQL: idempotency, accuracy on a known stream, conflicts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from services.feedback.metrics import AccuracyRow, FeedbackMetrics
from services.feedback.repository import FeedbackStore
from shared.db.session import make_engine
from shared.settings import DEFAULT_TAGS
from tests.fixtures.db import migrated
from tests.services.feedback.helpers import classified, content, human, label


@pytest.fixture
def store(database_url: str) -> Iterator[FeedbackStore]:
    migrated(database_url)
    engine = make_engine(database_url)
    yield FeedbackStore(engine, DEFAULT_TAGS)
    engine.dispose()


def test_labels_are_stored_once_per_label_id(store: FeedbackStore) -> None:
    first = label("a", "mlops", label_id="L1")
    effects = store.apply_batch(labels=[first, first])
    again = store.apply_batch(labels=[first])

    assert effects.new_labels == {"reviewer": 1}
    assert sum(again.new_labels.values()) == 0


def test_online_accuracy_per_version_and_role_on_a_known_stream(store: FeedbackStore) -> None:
    # v1 stable: 4 gold items, right on 3. v2 canary: 2 gold items, right on 1.
    # Item "e" has only a user report, no gold label; item "f" is a reviewer conflict:
    # neither counts.
    predictions = [
        classified("a", "mlops"),
        classified("b", "mlops"),
        classified("c", "other"),
        classified("d", None, route="review"),  # unapproved top tag: always wrong
        classified("e", "mlops"),
        classified("f", "mlops"),
        classified("a", "mlops", version="v2", role="canary"),
        classified("b", "other", version="v2", role="canary"),
    ]
    labels = [
        label("a", "mlops"),
        label("b", "mlops"),
        label("c", "other"),
        label("d", "computer-vision"),
        label("d", "other", source="user_report", labeler="client1"),  # reviewer wins
        label("e", "other", source="user_report", labeler="client1"),  # a report is no gold
        label("f", "mlops", labeler="alice"),
        label("f", "other", labeler="bob"),
    ]
    # Labels before predictions: the join does not care about arrival order.
    store.apply_batch(labels=labels[:3])
    store.apply_batch(predictions=predictions, labels=labels[3:])

    rows = {(r.model_version, r.role): r for r in store.accuracy()}
    assert rows == {
        ("v1", "stable"): AccuracyRow("v1", "stable", samples=4, correct=3),
        ("v2", "canary"): AccuracyRow("v2", "canary", samples=2, correct=1),
    }
    metrics = FeedbackMetrics(CollectorRegistry())
    metrics.set_accuracy(rows.values())
    registry = metrics.registry
    labels_v1 = {"model_version": "v1", "role": "stable"}
    assert registry.get_sample_value("tagstream_feedback_online_accuracy", labels_v1) == 0.75
    assert registry.get_sample_value("tagstream_feedback_online_samples", labels_v1) == 4
    by_route = store.accuracy_by_route()
    assert {
        "model_version": "v1",
        "role": "stable",
        "route": "review",
        "samples": 1,
        "correct": 0,
    } in by_route


def test_a_human_decision_is_not_a_model_prediction(store: FeedbackStore) -> None:
    # v1 guessed mlops on "a" and routed it to review; the reviewer said "other", which
    # is both the gold label and the human decision on content.classified.
    store.apply_batch(
        predictions=[classified("a", "mlops", route="review"), human("a", "other")],
        labels=[label("a", "other")],
    )
    store.apply_batch(predictions=[human("a", "other")])  # a redelivery changes nothing

    assert store.accuracy() == [AccuracyRow("v1", "stable", samples=1, correct=0)]
    assert [r["route"] for r in store.accuracy_by_route()] == ["review"]


def test_a_conflict_is_requeued_once_text_and_prediction_are_known(store: FeedbackStore) -> None:
    effects = store.apply_batch(labels=[label("x", "mlops"), label("x", "other", labeler="bob")])
    assert effects.new_conflicts == ["x"]
    assert effects.requeue == []  # item unknown: recorded, not requeued yet

    later = store.apply_batch(items=[content("x")], predictions=[classified("x", "mlops")])
    [(conflict_id, request)] = later.requeue
    assert request.item_id == "x"
    assert request.reason == "low_confidence"
    assert request.predicted_tag == "mlops"
    assert request.title == "Kubernetes serving pipeline"

    done = store.apply_batch(requeued=[conflict_id], items=[content("x")])
    assert done.requeue == []  # acknowledged once: not sent again


def test_prune_keeps_gold_items(store: FeedbackStore) -> None:
    store.apply_batch(items=[content(f"i{n}", minute=n) for n in range(120)])
    store.apply_batch(labels=[label("i0", "mlops")])

    store.prune_items(keep=100)

    texts = store.recent_texts(1000)
    assert len(texts) == 101  # the 100 newest and the oldest, which has a gold label
    assert store.gold_count() == 1
