"""The behavioural test runner: how each kind of case is judged, failures as results.

The model under test here is a baseline (a real predictor with known behaviour); the
cases on a trained model are ``test_behaviour_model.py``.
"""

from __future__ import annotations

from shared.ml.baselines import KeywordBaseline, MajorityBaseline
from shared.ml.behaviour import CASES, KINDS, BehaviourCase, case_result, run_behaviour


def test_every_kind_has_cases_and_every_expected_tag_is_approved() -> None:
    from shared.settings import DEFAULT_TAGS

    assert {case.kind for case in CASES} == set(KINDS)
    for case in CASES:
        if case.kind == "invariance":
            assert case.variant
            assert case.expected is None
        else:
            assert case.expected in DEFAULT_TAGS
        if case.kind == "directional":
            assert case.variant
            assert case.variant.startswith(case.title)


def test_invariance_compares_the_variant_with_the_title() -> None:
    case = BehaviourCase("invariance", "typos", "a title", "a tilte")
    assert case_result(case, "mlops", "mlops").passed
    failed = case_result(case, "mlops", "other")
    assert not failed.passed
    assert (failed.expected, failed.predicted) == ("mlops", "other")


def test_directional_judges_the_variant_and_minimum_functionality_the_title() -> None:
    directional = BehaviourCase("directional", "cv", "base", "base images", "computer-vision")
    assert case_result(directional, "other", "computer-vision").passed
    assert not case_result(directional, "computer-vision", "other").passed
    mft = BehaviourCase("minimum_functionality", "cv", "images", None, "computer-vision")
    assert case_result(mft, "computer-vision", "computer-vision").passed
    assert not case_result(mft, "other", "computer-vision").passed


def test_a_constant_model_passes_invariance_only() -> None:
    report = run_behaviour(MajorityBaseline(tag="other", share=0.5))
    counts = report.counts()
    n_invariance = sum(c.kind == "invariance" for c in CASES)
    n_other = sum(c.expected == "other" for c in CASES if c.kind == "minimum_functionality")
    assert counts["invariance"] == (n_invariance, n_invariance)
    assert counts["directional"][0] == 0
    assert counts["minimum_functionality"][0] == n_other
    assert report.n_passed == n_invariance + n_other
    assert len(report.failures) == len(CASES) - report.n_passed
    assert all(not r.passed for r in report.failures)
    assert report.model == "majority class"


def test_results_follow_the_cases_in_order() -> None:
    report = run_behaviour(KeywordBaseline(fallback="other"))
    assert [(r.kind, r.name, r.title) for r in report.results] == [
        (c.kind, c.name, c.title) for c in CASES
    ]
    # the keyword rules see "image" and "segmentation" through the typos
    typo = next(r for r in report.results if r.title.startswith("A survey of image"))
    assert typo.passed
    assert typo.predicted == "computer-vision"
