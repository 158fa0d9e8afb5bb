"""The review logic on SQLite and PostgreSQL: order, leases, skips, labels, undo, stats."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.review import service
from services.review.repository import ReviewRepository
from services.review.service import NothingToUndo, NotHolder, UnknownTag
from services.review.tables import ReviewItemRow, ReviewOutboxRow
from shared.messages import Classification
from tests.services.review.conftest import POLICY, T0, Enqueue, request

Sessions = sessionmaker[Session]


def claim(sessions: Sessions, reviewer: str, at=T0):
    with sessions.begin() as session:
        return service.claim_next(session, reviewer, at)


def label(sessions: Sessions, reviewer: str, item_id: str, tag: str = "mlops", at=T0):
    with sessions.begin() as session:
        return service.label_item(session, reviewer, item_id, tag, at)


def pending_decisions(sessions: Sessions) -> list[Classification]:
    """The human decisions waiting in the outbox for content.classified, oldest first."""
    with sessions.begin() as session:
        rows = ReviewRepository(session).unsent(100)
        return [
            Classification.decode(json.dumps(r.payload).encode())
            for r in rows
            if r.topic == "content.classified"
        ]


def test_storing_the_same_request_twice_queues_it_once(
    sessions: Sessions, enqueue: Enqueue
) -> None:
    enqueue(request("a"), request("a", confidence=0.1))
    with sessions.begin() as session:
        rows = session.scalars(select(ReviewItemRow)).all()
    assert [(r.item_id, r.confidence) for r in rows] == [("a", 0.5)]


def test_a_newer_request_for_a_labeled_item_asks_another_reviewer(
    sessions: Sessions, enqueue: Enqueue
) -> None:
    """The feedback service's call for a second opinion on conflicting labels."""
    enqueue(request("a"))
    claim(sessions, "ann")
    label(sessions, "ann", "a")
    enqueue(request("a"))  # re-delivery of the same request: nothing changes
    assert claim(sessions, "bob") is None
    later = request("a", requested_at=T0 + timedelta(minutes=5))
    enqueue(later)
    assert claim(sessions, "ann") is None  # never the reviewer who already labeled it
    second = claim(sessions, "bob")
    assert second is not None
    assert second.item_id == "a"


def test_claims_lowest_confidence_first_then_oldest(sessions: Sessions, enqueue: Enqueue) -> None:
    enqueue(request("late", 0.3, minute=5), request("high", 0.9), request("early", 0.3, minute=1))
    order = []
    for reviewer in ("r1", "r2", "r3"):
        item = claim(sessions, reviewer)
        assert item is not None
        order.append(item.item_id)
    assert order == ["early", "late", "high"]
    assert claim(sessions, "r4") is None


def test_oldest_priority_ignores_confidence(sessions: Sessions, enqueue: Enqueue) -> None:
    enqueue(request("new", 0.1, minute=9), request("old", 0.9, minute=1))
    policy = POLICY.__class__(**{**POLICY.__dict__, "priority": "oldest"})
    with sessions.begin() as session:
        item = service.claim_next(session, "r1", T0, policy=policy)
    assert item is not None
    assert item.item_id == "old"


def test_a_reviewer_gets_the_same_item_back_until_done(
    sessions: Sessions, enqueue: Enqueue
) -> None:
    enqueue(request("a", 0.1), request("b", 0.2))
    first = claim(sessions, "r1")
    again = claim(sessions, "r1", T0 + timedelta(seconds=10))
    assert first is not None
    assert again is not None
    assert again.item_id == first.item_id == "a"
    assert again.lease_expires_at == first.lease_expires_at == T0 + POLICY.lease
    assert first.queue_depth == 2
    assert first.audit is False
    assert first.probabilities["mlops"] == 0.1


def test_an_expired_lease_makes_the_item_claimable_again(
    sessions: Sessions, enqueue: Enqueue
) -> None:
    enqueue(request("a"))
    assert claim(sessions, "r1") is not None
    assert claim(sessions, "r2", T0 + timedelta(seconds=299)) is None
    taken = claim(sessions, "r2", T0 + timedelta(seconds=301))
    assert taken is not None
    assert taken.item_id == "a"
    with pytest.raises(NotHolder):
        label(sessions, "r1", "a", at=T0 + timedelta(seconds=302))


def test_skipped_items_come_back_only_when_nothing_else_remains(
    sessions: Sessions, enqueue: Enqueue
) -> None:
    enqueue(request("a", 0.1), request("b", 0.2))
    with sessions.begin() as session:
        service.skip_item(session, "r1", claim(sessions, "r1").item_id, T0)
    nxt = claim(sessions, "r1")
    assert nxt is not None
    assert nxt.item_id == "b"
    other = claim(sessions, "r2")
    assert other is not None
    assert other.item_id == "a"
    label(sessions, "r1", "b")
    label(sessions, "r2", "a")
    enqueue(request("c", 0.05))
    with sessions.begin() as session:
        service.skip_item(session, "r1", claim(sessions, "r1").item_id, T0)
    again = claim(sessions, "r1")
    assert again is not None
    assert again.item_id == "c"


def test_label_by_the_holder_is_stored_with_an_outbox_row(
    sessions: Sessions, enqueue: Enqueue
) -> None:
    enqueue(request("a", 0.1, reason="audit"))
    claim(sessions, "r1")
    stored = label(sessions, "r1", "a", "mlops", T0 + timedelta(seconds=42))
    assert stored.item_id == "a"
    assert stored.tag == "mlops"
    assert stored.decision_seconds == 42
    with sessions.begin() as session:
        item = session.get(ReviewItemRow, "a")
        outbox = session.scalars(select(ReviewOutboxRow)).all()
    assert item is not None
    assert item.state == "labeled"
    assert item.claimed_by is None
    assert [(r.topic, r.key) for r in outbox] == [
        ("feedback.labels", "a"),
        ("content.classified", "a"),
    ]
    assert {r.label_id for r in outbox} == {stored.label_id}
    payload = outbox[0].payload
    assert payload["label_id"] == stored.label_id
    assert payload["source"] == "reviewer"
    assert payload["labeler"] == "r1"
    assert payload["audit"] is True
    assert payload["predicted_tag"] == "mlops"
    assert payload["model_version"] == "v1"
    assert payload["decision_seconds"] == 42
    # An audit label that agrees with the auto-accepted tag confirms it as a human decision.
    assert Classification.decode(json.dumps(outbox[1].payload).encode()) == Classification(
        schema_version=2,
        item_id="a",
        tag="mlops",
        route="human",
        confidence=0.1,
        predicted_tag="mlops",
        probabilities={"mlops": 0.1, "other": 0.9},
        model_version="v1",
        latency_ms=(3600 + 42) * 1000,  # received an hour before T0
        decided_at=T0 + timedelta(seconds=42),
        label_id=stored.label_id,
    )
    assert claim(sessions, "r1") is None


def test_the_items_traceparent_goes_with_its_label_and_a_reopened_item_takes_the_newer(
    sessions: Sessions,
) -> None:
    first, second = ("00-" + t * 32 + "-" + "2" * 16 + "-01" for t in "13")
    with sessions.begin() as session:
        service.store_request(session, request("a"), T0, first)
        service.store_request(session, request("b"), T0)  # queued untraced
    for item in ("a", "b"):
        claim(sessions, "ann")
        label(sessions, "ann", item)
    later = request("a", requested_at=T0 + timedelta(minutes=1))
    with sessions.begin() as session:
        assert service.store_request(session, later, T0, second)  # reopened
        outbox = session.scalars(select(ReviewOutboxRow).order_by(ReviewOutboxRow.id)).all()
        reopened = session.get(ReviewItemRow, "a")
        assert reopened is not None
        assert reopened.traceparent == second
    assert [(r.key, r.traceparent) for r in outbox] == [
        ("a", first),
        ("a", first),
        ("b", None),
        ("b", None),
    ]


def test_an_audit_disagreement_is_a_correction_of_the_auto_accepted_tag(
    sessions: Sessions, enqueue: Enqueue
) -> None:
    enqueue(request("a", 0.95, reason="audit", predicted_tag="mlops"))
    claim(sessions, "r1")
    stored = label(sessions, "r1", "a", "computer-vision")

    [decision] = pending_decisions(sessions)
    assert (decision.item_id, decision.route, decision.tag) == ("a", "human", "computer-vision")
    assert (decision.predicted_tag, decision.model_version) == ("mlops", "v1")
    assert decision.label_id == stored.label_id


def test_label_needs_the_claim_and_an_approved_tag(sessions: Sessions, enqueue: Enqueue) -> None:
    enqueue(request("a"))
    with pytest.raises(NotHolder):
        label(sessions, "r1", "a")  # no claim
    claim(sessions, "r1")
    with pytest.raises(NotHolder):
        label(sessions, "r2", "a")  # someone else's claim
    with pytest.raises(NotHolder):
        label(sessions, "r1", "missing")
    with pytest.raises(UnknownTag):
        label(sessions, "r1", "a", "cooking")
    with pytest.raises(NotHolder), sessions.begin() as session:
        service.skip_item(session, "r2", "a", T0)


def test_undo_within_the_window_returns_the_item_and_cancels_the_unsent_label(
    sessions: Sessions, enqueue: Enqueue
) -> None:
    enqueue(request("a", 0.1), request("b", 0.2))
    claim(sessions, "r1")
    label(sessions, "r1", "a", "other")
    assert claim(sessions, "r1").item_id == "b"
    with sessions.begin() as session:
        back = service.undo_last(session, "r1", T0 + timedelta(seconds=60))
    assert back.item_id == "a"
    assert back.lease_expires_at == T0 + timedelta(seconds=360)
    with sessions.begin() as session:
        b = session.get(ReviewItemRow, "b")
        assert b is not None
        assert b.claimed_by is None
        assert session.scalars(select(ReviewOutboxRow.cancelled_at)).all() != [None]
    assert claim(sessions, "r1", T0 + timedelta(seconds=61)).item_id == "a"
    stored = label(sessions, "r1", "a", "mlops", T0 + timedelta(seconds=62))
    assert stored.tag == "mlops"
    with sessions.begin() as session:
        assert service.progress(session, "r1", T0).labeled_today == 1
        with pytest.raises(NothingToUndo):
            service.undo_last(session, "r2", T0)


def test_undo_of_an_unsent_label_leaves_only_the_corrected_decision_to_send(
    sessions: Sessions, enqueue: Enqueue
) -> None:
    enqueue(request("a", 0.1))
    claim(sessions, "r1")
    first = label(sessions, "r1", "a", "other")
    with sessions.begin() as session:
        service.undo_last(session, "r1", T0 + timedelta(seconds=10))
    assert pending_decisions(sessions) == []  # cancelled with its FeedbackLabel
    corrected = label(sessions, "r1", "a", "mlops", T0 + timedelta(seconds=20))

    [decision] = pending_decisions(sessions)
    assert (decision.tag, decision.label_id) == ("mlops", corrected.label_id)
    assert corrected.label_id != first.label_id


def test_undo_of_a_sent_label_sends_the_corrected_decision_after_it(
    sessions: Sessions, enqueue: Enqueue
) -> None:
    enqueue(request("a", 0.1))
    claim(sessions, "r1")
    label(sessions, "r1", "a", "other")
    with sessions.begin() as session:  # what the relay does once the broker acknowledged
        repo = ReviewRepository(session)
        repo.mark_sent([r.id for r in repo.unsent(10)], T0 + timedelta(seconds=1))
    with sessions.begin() as session:
        service.undo_last(session, "r1", T0 + timedelta(seconds=10))
    corrected = label(sessions, "r1", "a", "mlops", T0 + timedelta(seconds=20))

    [decision] = pending_decisions(sessions)
    assert (decision.tag, decision.label_id) == ("mlops", corrected.label_id)
    with sessions.begin() as session:
        rows = session.scalars(
            select(ReviewOutboxRow)
            .where(ReviewOutboxRow.topic == "content.classified")
            .order_by(ReviewOutboxRow.id)
        ).all()
        # Sent in row order on one key: the correction is the latest decision of the item.
        assert [(r.payload["tag"], r.sent_at is not None) for r in rows] == [
            ("other", True),
            ("mlops", False),
        ]


def test_undo_after_the_window_is_refused(sessions: Sessions, enqueue: Enqueue) -> None:
    enqueue(request("a"))
    claim(sessions, "r1")
    label(sessions, "r1", "a")
    with pytest.raises(NothingToUndo), sessions.begin() as session:
        service.undo_last(session, "r1", T0 + timedelta(seconds=121))


def test_stats_count_labels_and_agreement(sessions: Sessions, enqueue: Enqueue) -> None:
    enqueue(request("a", 0.1), request("b", 0.2), request("c", 0.3))
    policy = POLICY.__class__(**{**POLICY.__dict__, "labels_per_item": 2})
    for reviewer, tags in (("r1", ["mlops", "other"]), ("r2", ["mlops", "mlops"])):
        for tag in tags:
            with sessions.begin() as session:
                item = service.claim_next(session, reviewer, T0, policy=policy)
                assert item is not None
                service.label_item(session, reviewer, item.item_id, tag, T0, policy=policy)
    with sessions.begin() as session:
        stats = service.review_stats(session, T0)
    assert stats.labels_per_reviewer == {"r1": 2, "r2": 2}
    assert stats.doubly_labeled_items == 2
    assert stats.agreement == 0.5
    assert stats.queue_depth == 1
    assert stats.oldest_pending_age_seconds == 3600
