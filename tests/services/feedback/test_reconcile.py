"""Reconciliation rules, pure (no database, no broker)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.feedback.service import LabelView, Reconciled, Suggestion, reconcile, suggestion
from tests.services.feedback.helpers import T0


def view(tag: str, source: str = "reviewer", labeler: str = "alice", minute: int = 0) -> LabelView:
    return LabelView(
        f"{labeler}-{minute}",
        "item",
        tag,
        source,  # type: ignore[arg-type]
        labeler,
        T0 + timedelta(minutes=minute),
    )


def gold(labels: list[LabelView]) -> Reconciled:
    result = reconcile(labels)
    assert result is not None
    return result


def test_one_reviewer_label_is_gold() -> None:
    result = gold([view("mlops")])
    assert (result.tag, result.source, result.status) == ("mlops", "reviewer", "agreed")


def test_a_reviewer_label_beats_user_reports() -> None:
    labels = [
        view("other", "user_report", "u1"),
        view("other", "user_report", "u2"),
        view("mlops", "reviewer", "alice"),
    ]
    assert gold(labels).tag == "mlops"
    assert gold(labels).source == "reviewer"


def test_latest_label_per_labeler_wins() -> None:
    labels = [view("other", minute=5), view("mlops", minute=1)]
    assert gold(labels).tag == "other"


def test_two_reviewers_disagreeing_is_a_conflict_without_gold() -> None:
    result = gold([view("mlops", labeler="alice"), view("other", labeler="bob")])
    assert result.status == "conflict"
    assert result.tag is None
    assert result.conflicting_tags == ("mlops", "other")


def test_a_second_opinion_breaks_the_tie() -> None:
    labels = [
        view("mlops", labeler="alice"),
        view("other", labeler="bob"),
        view("other", labeler="carol"),
    ]
    assert gold(labels).tag == "other"
    assert gold(labels).status == "agreed"


def test_a_reviewer_correcting_themself_is_no_conflict() -> None:
    labels = [view("mlops", labeler="alice", minute=0), view("other", labeler="alice", minute=1)]
    assert gold(labels).status == "agreed"
    assert gold(labels).tag == "other"


def test_user_reports_alone_are_never_gold() -> None:
    reports = [view("mlops", "user_report", f"u{n}", n) for n in range(5)]
    assert reconcile(reports) is None


def test_user_reports_suggest_the_majority_then_the_latest_one_vote_per_end_user() -> None:
    majority = [
        view("mlops", "user_report", "u1", 0),
        view("mlops", "user_report", "u2", 1),
        view("other", "user_report", "u3", 2),
    ]
    assert suggestion(majority) == Suggestion("mlops", 3)
    tie = [view("mlops", "user_report", "u1", 0), view("other", "user_report", "u2", 1)]
    assert suggestion(tie) == Suggestion("other", 2)
    # one end user reporting again: their latest report is their one vote
    repeated = [*tie, view("other", "user_report", "u1", 3), view("other", "user_report", "u1", 4)]
    assert suggestion(repeated) == Suggestion("other", 2)
    assert suggestion([view("mlops")]) is None  # reviewers' labels are no suggestion


def test_no_labels_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        reconcile([])
