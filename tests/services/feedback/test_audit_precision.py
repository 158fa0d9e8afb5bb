"""Audit precision and paired canary/stable counts, on SQLite and PostgreSQL, and as the
feedback service exports and serves them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.feedback.app import create_app
from services.feedback.metrics import AuditRow, FeedbackMetrics, PairedRow
from services.feedback.repository import FeedbackStore
from shared.db.session import make_engine
from shared.settings import DEFAULT_TAGS
from tests.fixtures.db import migrated
from tests.services.feedback.helpers import classified, label
from tests.services.feedback.test_api import make_settings, serve


@pytest.fixture
def store(database_url: str) -> Iterator[FeedbackStore]:
    migrated(database_url)
    engine = make_engine(database_url)
    yield FeedbackStore(engine, DEFAULT_TAGS)
    engine.dispose()


def test_audit_precision_counts_only_audited_auto_accepted_items(store: FeedbackStore) -> None:
    predictions = [
        # v1 auto-accepted and audited: right on a, b, c; wrong on d
        *(classified(i, "mlops") for i in "abcd"),
        # v1 routed to review (its least confident): wrong, but not an auto decision
        classified("e", "mlops", route="review"),
        # v1 auto-accepted, labelled but not in the audit sample (e.g. a user report)
        classified("f", "mlops"),
        # v2 as canary answered a (on content.shadow): not the deciding version
        classified("a", "other", version="v2", role="canary"),
        # v2 decided g, audited: right
        classified("g", "other", version="v2", role="canary"),
    ]
    labels = [
        *(label(i, "mlops", audit=True, version="v1") for i in "abc"),
        label("d", "other", audit=True, version="v1"),
        label("e", "other", version="v1"),
        label("f", "other", version="v1"),
        label("g", "other", audit=True, version="v2"),
    ]
    store.apply_batch(predictions=predictions, labels=labels)

    assert store.audit_precision() == [AuditRow("v1", 4, 3), AuditRow("v2", 1, 1)]
    # the biased figure the old alert used counts every labelled item: 3 right of 6
    stable = {(r.model_version, r.role): r for r in store.accuracy()}[("v1", "stable")]
    assert (stable.samples, stable.correct) == (6, 3)


def test_paired_counts_every_labelled_item_both_versions_answered(store: FeedbackStore) -> None:
    # While v2 is the canary both versions answer every item (one on content.classified,
    # the other on content.shadow); the gold label says which was right.
    answers = {  # item: (stable's, canary's, gold)
        "a": ("mlops", "mlops", "mlops"),  # both right
        "b": ("mlops", "other", "mlops"),  # stable only
        "c": ("mlops", "other", "mlops"),  # stable only
        "d": ("other", "mlops", "mlops"),  # canary only
        "e": ("other", "other", "mlops"),  # neither
        "f": (None, "mlops", "mlops"),  # stable's top tag unapproved: wrong
    }
    predictions = []
    for item, (s, c, _) in answers.items():
        predictions.append(classified(item, s, route="review"))
        predictions.append(classified(item, c, version="v2", role="canary", route="review"))
    predictions.append(classified("g", "mlops"))  # only stable answered: not paired
    predictions.append(classified("h", "mlops", version="v3", role="canary"))  # no label
    labels = [label(item, gold) for item, (_, _, gold) in answers.items()]
    labels.append(label("g", "mlops"))
    # labels first, predictions later: arrival order does not matter
    store.apply_batch(labels=labels)
    store.apply_batch(predictions=predictions)

    assert store.paired() == [PairedRow("v1", "v2", 1, 2, 2, 1)]


def test_a_human_decision_does_not_overwrite_the_model_answer(store: FeedbackStore) -> None:
    model = classified("a", "other")
    human = model.model_copy(update={"route": "human", "tag": "mlops", "predicted_tag": "mlops"})
    store.apply_batch(predictions=[model], labels=[label("a", "mlops")])
    store.apply_batch(predictions=[human])

    rows = store.accuracy()
    assert [(r.samples, r.correct) for r in rows] == [(1, 0)]


def test_metrics_export_precision_with_wilson_bounds_and_paired_outcomes() -> None:
    metrics = FeedbackMetrics(CollectorRegistry())
    metrics.set_audit_precision([AuditRow("v1", 200, 180), AuditRow("v0", 0, 0)], confidence=0.95)
    metrics.set_paired([PairedRow("v1", "v2", 400, 12, 30, 8)])
    get = metrics.registry.get_sample_value
    v1 = {"model_version": "v1"}

    assert get("tagstream_feedback_audit_samples", v1) == 200
    assert get("tagstream_feedback_audit_precision", v1) == 0.9
    lower = get("tagstream_feedback_audit_precision_lower", v1)
    upper = get("tagstream_feedback_audit_precision_upper", v1)
    assert lower is not None
    assert upper is not None
    # Wilson, one-sided 95% (z = 1.645) on 180 of 200
    assert round(lower, 4) == 0.8596
    assert round(upper, 4) == 0.9297
    assert get("tagstream_feedback_audit_samples", {"model_version": "v0"}) is None
    pair = {"stable_version": "v1", "canary_version": "v2"}
    assert get("tagstream_feedback_paired_labels", {**pair, "outcome": "stable_only"}) == 30
    assert get("tagstream_feedback_paired_labels", {**pair, "outcome": "canary_only"}) == 12

    metrics.set_paired([])  # the pair's labels are gone (e.g. store reset): no stale series
    assert get("tagstream_feedback_paired_labels", {**pair, "outcome": "stable_only"}) is None


async def test_the_monitor_exports_and_the_api_shows_precision_and_pairs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, feedback_audit_min_samples=50, target_precision=0.95)
    metrics = CollectorRegistry()
    app = create_app(
        settings, metrics_registry=metrics, publisher=None, consume=False, monitor=False
    )
    async with serve(app) as http:
        state = app.state.feedback
        predictions = [classified(i, "mlops") for i in "abcd"]
        predictions += [classified(i, "other", version="v2", role="canary") for i in "abcd"]
        labels = [label(i, "mlops", audit=True, version="v1") for i in "abc"]
        labels.append(label("d", "other", audit=True, version="v1"))
        state.store.apply_batch(predictions=predictions, labels=labels)
        await asyncio.to_thread(state.monitor.refresh)
        body = (await http.get("/v1/accuracy")).json()

    [v1] = body["audit_precision"]
    assert (v1["model_version"], v1["samples"], v1["correct"], v1["precision"]) == (
        "v1",
        4,
        3,
        0.75,
    )
    assert 0 < v1["lower"] < 0.75 < v1["upper"] < 1
    assert body["paired"] == [
        {
            "stable_version": "v1",
            "canary_version": "v2",
            "both_correct": 0,
            "canary_only": 1,
            "stable_only": 3,
            "neither_correct": 0,
        }
    ]
    get = metrics.get_sample_value
    assert get("tagstream_feedback_audit_precision_upper", {"model_version": "v1"}) == (v1["upper"])
    assert get("tagstream_feedback_target_precision") == 0.95
    assert get("tagstream_feedback_audit_min_samples") == 50
