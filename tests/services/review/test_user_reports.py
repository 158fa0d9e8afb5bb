"""User reports in the review queue, on SQLite and PostgreSQL: ahead of ordinary items,
merged into an item still waiting, and a reviewed item put back for a second look."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from services.review import service
from services.review.tables import ReviewItemRow
from shared.messages import ReviewRequest
from tests.services.review.conftest import T0, Enqueue, request

Sessions = sessionmaker[Session]


def report(item_id: str, minute: int = 0, **extra: object) -> ReviewRequest:
    """A user_report request from the feedback service, ``minute`` after T0."""
    fields: dict[str, object] = {
        "schema_version": 2,
        "reason": "user_report",
        "confidence": 0.97,  # the model was sure: it would otherwise come last
        "suggested_tag": "computer-vision",
        "comment": "it is about image segmentation",
        "report_count": 2,
        "requested_at": T0 + timedelta(minutes=minute),
        **extra,
    }
    return request(item_id, **fields)


def claim(sessions: Sessions, reviewer: str, at=T0):
    with sessions.begin() as session:
        return service.claim_next(session, reviewer, at)


def label(sessions: Sessions, reviewer: str, item_id: str, tag: str, at=T0):
    with sessions.begin() as session:
        return service.label_item(session, reviewer, item_id, tag, at)


def row(sessions: Sessions, item_id: str) -> ReviewItemRow:
    with sessions.begin() as session:
        found = session.get(ReviewItemRow, item_id)
        assert found is not None
        session.expunge(found)
        return found


def test_a_reported_item_is_claimed_ahead_of_ordinary_items(
    sessions: Sessions, enqueue: Enqueue
) -> None:
    enqueue(request("unsure", 0.1, minute=0), report("reported", minute=30))

    first = claim(sessions, "ann")
    second = claim(sessions, "bob")

    assert first is not None
    assert second is not None
    assert (first.item_id, first.reason) == ("reported", "user_report")
    assert (first.suggested_tag, first.report_comment, first.report_count) == (
        "computer-vision",
        "it is about image segmentation",
        2,
    )
    assert (second.item_id, second.reason, second.suggested_tag) == (
        "unsure",
        "low_confidence",
        None,
    )


def test_a_report_of_a_waiting_item_is_merged_into_it(sessions: Sessions, enqueue: Enqueue) -> None:
    enqueue(request("unsure", 0.1), request("waiting", 0.8, minute=1))
    enqueue(report("waiting", minute=5))
    with sessions.begin() as session:
        assert not service.store_request(session, report("waiting", minute=5), T0)  # re-delivery
        assert session.query(ReviewItemRow).count() == 2

    first = claim(sessions, "ann")
    assert first is not None
    assert (first.item_id, first.reason, first.confidence) == ("waiting", "user_report", 0.8)

    newer = report("waiting", minute=9, suggested_tag="other", comment=None, report_count=3)
    enqueue(newer)  # a third end user while ann holds it: her claim stands
    merged = row(sessions, "waiting")
    assert (merged.claimed_by, merged.suggested_tag, merged.report_count) == ("ann", "other", 3)
    assert merged.report_comment is None


def test_a_report_of_a_reviewed_item_puts_it_back_for_a_second_look(
    sessions: Sessions, enqueue: Enqueue
) -> None:
    enqueue(request("done", 0.4))
    claim(sessions, "ann")
    label(sessions, "ann", "done", "mlops")
    assert claim(sessions, "ann") is None

    enqueue(report("done", minute=10))

    # Anyone may look again, the reviewer who labeled it before the report included.
    again = claim(sessions, "ann", at=T0 + timedelta(minutes=11))
    assert again is not None
    assert (again.item_id, again.reason, again.suggested_tag) == (
        "done",
        "user_report",
        "computer-vision",
    )
    label(sessions, "ann", "done", "computer-vision", at=T0 + timedelta(minutes=12))
    assert row(sessions, "done").state == "labeled"
    assert claim(sessions, "bob", at=T0 + timedelta(minutes=13)) is None

    enqueue(report("done", minute=10))  # the same report again: already looked at
    assert row(sessions, "done").state == "labeled"
