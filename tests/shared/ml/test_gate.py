"""The offline gate's statistics: the paired interval and the verdict rules."""

from __future__ import annotations

import pytest

from shared.ml.data import LabeledItem
from shared.ml.gate import (
    GateConfig,
    PairedSlice,
    fitted_texts_json,
    judge,
    read_fitted_texts,
    read_fitted_titles,
    text_digest,
    unseen_by,
)
from shared.serving.text import prepare_text

CONFIG = GateConfig(margin=0.05, min_slice_items=30, confidence=0.95)


def table(both: int, candidate_only: int, stable_only: int, neither: int) -> PairedSlice:
    return PairedSlice(both, candidate_only, stable_only, neither)


def test_identical_answers_pass_once_the_sample_can_show_it() -> None:
    # No item differs: the difference is 0, and the interval narrows with n.
    small, large = table(20, 0, 0, 0), table(200, 0, 0, 0)
    assert small.figures(CONFIG, always_judged=True)["passed"] is False  # too few to prove
    figures = large.figures(CONFIG, always_judged=True)
    assert figures["difference"] == 0
    assert figures["passed"] is True
    assert -0.05 < figures["lower_bound"] < 0 < figures["upper_bound"]


def test_a_clearly_worse_candidate_fails_and_a_better_one_passes() -> None:
    worse = table(50, 2, 40, 8).figures(CONFIG, always_judged=True)
    assert worse["difference"] == pytest.approx(-0.38)
    assert worse["passed"] is False
    better = table(50, 40, 2, 8).figures(CONFIG, always_judged=True)
    assert better["passed"] is True
    assert better["candidate_accuracy"] == pytest.approx(0.9)
    assert better["stable_accuracy"] == pytest.approx(0.52)


def test_the_bounds_match_the_agresti_min_formula() -> None:
    # b=10, c=4, n=100 -> adjusted b'=10.5, c'=4.5, n'=102.
    low, high = table(80, 10, 4, 6).bounds(0.95)
    diff = 6 / 102
    se = ((15 - 36 / 102) ** 0.5) / 102
    assert low == pytest.approx(diff - 1.6448536 * se)
    assert high == pytest.approx(diff + 1.6448536 * se)


def test_small_slices_are_reported_but_not_judged() -> None:
    figures = table(5, 0, 10, 0).figures(CONFIG)
    assert figures["judged"] is False
    assert figures["passed"] is None
    assert figures["n"] == 15


def test_too_few_items_overall_leave_the_verdict_to_an_operator_unless_proven_worse() -> None:
    # 20 identical answers cannot show non-inferiority, but neither do they show harm.
    verdict, reason, failed = judge(table(20, 0, 0, 0), {}, CONFIG, "v1")
    assert (verdict, failed) == ("not_run", [])
    assert "only 20 items" in reason
    # 29 are still too few for the bound to clear; 80 clear it, below min_slice_items too.
    assert judge(table(29, 0, 0, 0), {}, CONFIG, "v1")[0] == "not_run"
    assert judge(table(80, 0, 0, 0), {}, GateConfig(0.05, 100, 0.95), "v1")[0] == "passed"
    # 20 items where the candidate is wrong on 15 the stable gets right: proven worse.
    verdict, reason, failed = judge(table(5, 0, 15, 0), {}, CONFIG, "v1")
    assert (verdict, failed) == ("failed", ["overall"])
    assert "worse than v1" in reason


def test_enough_items_are_judged_overall_and_per_slice() -> None:
    slices = {"tag:mlops": table(10, 0, 30, 0), "tag:other": table(160, 0, 0, 0)}
    verdict, _, failed = judge(table(170, 0, 30, 0), slices, CONFIG, "v1")
    assert (verdict, failed) == ("failed", ["overall", "tag:mlops"])
    verdict, reason, failed = judge(
        table(200, 0, 0, 0), {"tag:other": table(200, 0, 0, 0)}, CONFIG, "v1"
    )
    assert (verdict, failed) == ("passed", [])
    assert "no worse than v1" in reason


def test_unseen_by_keeps_only_texts_the_version_never_fitted_on() -> None:
    seen, unseen = LabeledItem("1", "Seen", "d", "other"), LabeledItem("2", "New", "d", "other")
    fitted = read_fitted_texts(fitted_texts_json([seen]))
    renamed = LabeledItem("99", "Seen", "d", "other")  # same text under another id
    assert unseen_by(fitted, [seen, unseen, renamed]) == [unseen]


def test_fitted_titles_are_kept_and_older_artifacts_have_none() -> None:
    item = LabeledItem("1", "YOLO, for Drones!", "a description", "computer-vision")
    titles = read_fitted_titles(fitted_texts_json([item]))
    assert titles == {text_digest(prepare_text("yolo for drones"))}
    assert read_fitted_titles(b'{"sha256": []}') == frozenset()
