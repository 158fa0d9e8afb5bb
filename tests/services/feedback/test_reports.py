"""End users' reports in the store, on SQLite and PostgreSQL: a report asks for review
(a user_report request), it is never gold; a reviewer's label is."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import insert, select

from services.feedback.gold import read_gold_rows
from services.feedback.repository import FeedbackStore
from services.feedback.tables import SCHEMA as FEEDBACK_SCHEMA
from services.feedback.tables import GoldLabelRow
from shared.db.migrate import upgrade
from shared.db.session import make_engine
from shared.messages import FeedbackLabel
from shared.settings import DEFAULT_TAGS
from tests.fixtures.db import migrated
from tests.services.feedback.helpers import T0, classified, content, label


@pytest.fixture
def store(database_url: str) -> Iterator[FeedbackStore]:
    migrated(database_url)
    engine = make_engine(database_url)
    yield FeedbackStore(engine, DEFAULT_TAGS)
    engine.dispose()


def report(item_id: str, tag: str, end_user: str, minute: int, comment: str | None = None):
    reported = label(item_id, tag, source="user_report", labeler=end_user, minute=minute)
    return FeedbackLabel.model_validate({**reported.model_dump(), "comment": comment})


def gold_tags(store: FeedbackStore) -> dict[str, str]:
    return {row.item_id: row.tag for row in read_gold_rows(store._engine)}


def test_a_report_asks_for_review_once_text_and_prediction_are_known(
    store: FeedbackStore,
) -> None:
    first = store.apply_batch(labels=[report("x", "computer-vision", "app/u1", 1, "images!")])
    assert first.reports == []  # nothing known of the item yet: kept pending

    known = store.apply_batch(items=[content("x")], predictions=[classified("x", "mlops")])
    [(label_ids, request)] = known.reports
    assert (request.schema_version, request.reason) == (2, "user_report")
    assert (request.suggested_tag, request.comment, request.report_count) == (
        "computer-vision",
        "images!",
        1,
    )
    assert (request.predicted_tag, request.model_version, request.title) == (
        "mlops",
        "v1",
        "Kubernetes serving pipeline",
    )
    assert gold_tags(store) == {}  # a report is never gold by itself

    # Not acknowledged yet: the next batch touching the item produces it again.
    again = store.apply_batch(predictions=[classified("x", "mlops")])
    assert [r for _, r in again.reports] == [request]
    store.apply_batch(reported=label_ids)
    assert store.apply_batch(predictions=[classified("x", "mlops")]).reports == []


def test_votes_are_per_end_user_and_a_repeated_vote_asks_nothing(store: FeedbackStore) -> None:
    store.apply_batch(items=[content("x")], predictions=[classified("x", "mlops")])
    one = store.apply_batch(
        labels=[report("x", "other", "app/u1", 1), report("x", "other", "app/u2", 2, "no ML")]
    )
    [(ids, request)] = one.reports
    assert (len(ids), request.suggested_tag, request.report_count) == (2, "other", 2)
    store.apply_batch(reported=ids)

    same_vote = store.apply_batch(labels=[report("x", "other", "app/u1", 3)])
    assert same_vote.reports == []
    third_user = store.apply_batch(labels=[report("x", "computer-vision", "app/u3", 4)])
    [(ids, request)] = third_user.reports
    assert (request.suggested_tag, request.report_count, request.comment) == ("other", 3, "no ML")
    store.apply_batch(reported=ids)

    # One end user sending the same report twice at once: one vote, one id asks for review.
    twice = store.apply_batch(
        labels=[report("x", "mlops", "app/u4", 5), report("x", "mlops", "app/u4", 5)]
    )
    [(ids, request)] = twice.reports
    assert (len(ids), request.report_count) == (1, 4)
    assert gold_tags(store) == {}


def test_only_a_reviewers_label_makes_the_reported_item_gold(store: FeedbackStore) -> None:
    store.apply_batch(items=[content("x")], predictions=[classified("x", "mlops")])
    [(sent, _)] = store.apply_batch(labels=[report("x", "other", "app/u1", 1)]).reports
    assert gold_tags(store) == {}

    store.apply_batch(reported=sent, labels=[label("x", "other", labeler="ann", minute=5)])
    assert gold_tags(store) == {"x": "other"}
    [row] = read_gold_rows(store._engine)
    assert len(row.label_ids) == 1  # the reviewer's label is behind it, not the report

    # A report asking for the tag reviewers agreed on has nothing for them to look at.
    agreeing = store.apply_batch(labels=[report("x", "other", "app/u2", 6)])
    assert agreeing.reports == []
    disagreeing = store.apply_batch(labels=[report("x", "mlops", "app/u3", 7)])
    [(_, request)] = disagreeing.reports
    assert request.requested_at > T0
    assert gold_tags(store) == {"x": "other"}  # still the reviewer's until one relabels


def test_the_migration_drops_gold_that_reports_alone_made(database_url: str) -> None:
    upgrade(database_url, FEEDBACK_SCHEMA, "feedback_0001")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            for item_id, source in (("reported", "user_report"), ("reviewed", "reviewer")):
                connection.execute(
                    insert(GoldLabelRow).values(
                        item_id=item_id,
                        tag="mlops",
                        source=source,
                        status="agreed",
                        n_labels=1,
                        updated_at=T0,
                    )
                )
        upgrade(database_url, FEEDBACK_SCHEMA)
        with engine.connect() as connection:
            left = connection.execute(select(GoldLabelRow.item_id)).scalars().all()
    finally:
        engine.dispose()
    assert left == ["reviewed"]


def test_prune_keeps_the_text_of_an_item_whose_report_waits_for_review(
    store: FeedbackStore,
) -> None:
    store.apply_batch(items=[content(f"i{n}", minute=n) for n in range(120)])
    waiting = store.apply_batch(labels=[report("i0", "other", "app/u1", 1)])
    assert waiting.reports == []  # no prediction for i0 yet: the report waits

    store.prune_items(keep=100)

    assert len(store.recent_texts(1000)) == 101  # the 100 newest and i0
    arrived = store.apply_batch(predictions=[classified("i0", "mlops")])
    assert [request.item_id for _, request in arrived.reports] == ["i0"]
