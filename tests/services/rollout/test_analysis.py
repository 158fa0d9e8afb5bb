"""Canary analysis decisions on recorded Prometheus responses, and its pure parts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from services.rollout.analysis import (
    CHECKS,
    WAITING_FOR_LABELS,
    AnalysisConfig,
    CheckResult,
    Verdict,
    analyse,
    build_queries,
    judge_agreement,
    judge_error_rate,
    judge_latency,
    judge_online_accuracy,
    judge_review_share,
    overall_verdict,
    total_variation,
)
from services.rollout.prometheus import PrometheusError, Sample, parse_query_response

RECORDED = Path(__file__).parent / "recorded"
CONFIG = AnalysisConfig()


class FakePrometheus:
    """In-memory Prometheus: answers each query with its recorded API response."""

    def __init__(self, responses: dict[str, Any], *, failing: set[str] | None = None) -> None:
        self.responses = responses
        self.failing = failing or set()
        self.asked: list[str] = []

    async def query(self, promql: str) -> list[Sample]:
        self.asked.append(promql)
        if promql in self.failing:
            raise PrometheusError("connection refused (fake)")
        if promql not in self.responses:
            raise AssertionError(
                f"no recorded answer (rerun tests.services.rollout.record): {promql}"
            )
        return parse_query_response(self.responses[promql])


class DownPrometheus:
    async def query(self, promql: str) -> list[Sample]:
        raise PrometheusError("query request to http://127.0.0.1:1 failed: ConnectError")


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDED / f"{name}.json").read_text())
    return data


async def run(
    name: str,
    *,
    require_labels: bool = False,
    final_step: bool = False,
    failing: set[str] | None = None,
) -> list[CheckResult]:
    data = recorded(name)
    fake = FakePrometheus(data["responses"], failing=failing)
    return await analyse(
        fake,
        canary=data["canary"],
        stable=data["stable"],
        window_seconds=data["window_seconds"],
        config=CONFIG,
        require_labels=require_labels,
        final_step=final_step,
    )


def verdicts(results: list[CheckResult]) -> dict[str, Verdict]:
    return {r.check: r.verdict for r in results}


ALL_PASS: dict[str, Verdict] = dict.fromkeys(CHECKS, "pass")

SCENARIOS: list[tuple[str, dict[str, Verdict], str]] = [
    ("good", ALL_PASS, "pass"),
    (
        "bad",
        {
            **ALL_PASS,
            "error_rate": "fail",
            "review_share": "fail",
            "prediction_shift": "fail",
            "shadow_agreement": "fail",
            "online_accuracy": "fail",
        },
        "fail",
    ),
    ("slow", {**ALL_PASS, "latency_p99": "fail"}, "fail"),
    (
        "no_data",
        {**dict.fromkeys(CHECKS, "inconclusive"), "online_accuracy": "skipped"},
        "inconclusive",
    ),
    (
        "nan",
        {**ALL_PASS, "latency_p99": "inconclusive", "online_accuracy": "inconclusive"},
        "inconclusive",
    ),
    ("low_traffic", {**ALL_PASS, "traffic": "inconclusive"}, "inconclusive"),
    ("few_labels", {**ALL_PASS, "online_accuracy": "skipped"}, "pass"),
    ("accuracy_worse", {**ALL_PASS, "online_accuracy": "fail"}, "fail"),
    # a guard: labels that cannot show the canary worse do not roll it back ...
    ("accuracy_unsure", ALL_PASS, "pass"),
]


@pytest.mark.parametrize(
    ("scenario", "expected", "overall"), SCENARIOS, ids=[s[0] for s in SCENARIOS]
)
async def test_recorded_scenario(scenario: str, expected: dict[str, Verdict], overall: str) -> None:
    results = await run(scenario)

    assert [r.check for r in results] == list(CHECKS)
    assert verdicts(results) == expected
    assert overall_verdict(results) == overall
    for r in results:
        assert r.queries
        assert r.threshold
        assert r.detail
        json.dumps(r.to_dict(), allow_nan=False)  # JSON-safe, as the decision log stores it


async def test_every_query_is_recorded_and_each_runs_once() -> None:
    data = recorded("good")
    fake = FakePrometheus(data["responses"])
    await analyse(
        fake, canary=data["canary"], stable=data["stable"], window_seconds=data["window_seconds"],
        config=CONFIG, require_labels=False, final_step=False,
    )  # fmt: skip
    assert sorted(fake.asked) == sorted(data["responses"])


async def test_bad_canary_details_name_the_numbers() -> None:
    by_check = {r.check: r for r in await run("bad")}

    review = by_check["review_share"]
    assert review.values["canary"] == pytest.approx(0.6, abs=0.01)
    assert review.values["stable"] == pytest.approx(0.1, abs=0.01)
    assert by_check["shadow_agreement"].values["agreement"] == pytest.approx(0.26, abs=0.01)
    assert by_check["prediction_shift"].values["distance"] == pytest.approx(0.2, abs=0.01)
    # sports and science moved by 15 points each: the first in name order is named
    assert "'science': 25.0% on the canary, 10.0% on stable" in by_check["prediction_shift"].detail
    accuracy = by_check["online_accuracy"]
    assert accuracy.values["upper"] is not None
    assert accuracy.values["upper"] < -CONFIG.max_accuracy_drop


async def test_too_little_traffic_is_said_so() -> None:
    traffic = (await run("low_traffic"))[0]
    assert traffic.verdict == "inconclusive"
    assert traffic.values["canary"] is not None
    assert traffic.values["canary"] < CONFIG.min_predictions
    assert "fewer than 50" in traffic.detail


async def test_few_labels_skipped_before_the_final_step_and_held_on_it() -> None:
    early = (await run("few_labels", require_labels=True, final_step=False))[-1]
    assert early.verdict == "skipped"
    assert "needs 30 labelled items answered by both versions, has 12" in early.detail

    final = await run("few_labels", require_labels=True, final_step=True)
    assert final[-1].verdict == "inconclusive"
    assert final[-1].waiting_for_labels
    assert final[-1].detail.startswith(WAITING_FOR_LABELS)
    assert "waiting_for_labels" not in final[-1].to_dict()  # the stored form is unchanged
    assert overall_verdict(final) == "hold"

    # Labels not required: the final step is not held for them.
    assert overall_verdict(await run("few_labels", final_step=True)) == "pass"


async def test_waiting_for_labels_does_not_hide_other_problems() -> None:
    assert overall_verdict(await run("no_data", require_labels=True, final_step=True)) == (
        "inconclusive"
    )
    slow = await run("slow", require_labels=True, final_step=True)
    assert overall_verdict(slow) == "fail"


async def test_one_failed_query_makes_only_its_check_inconclusive() -> None:
    data = recorded("good")
    p99 = build_queries(data["canary"], data["stable"], data["window_seconds"])["latency_p99"]
    results = await run("good", failing={p99["canary"]})

    assert verdicts(results) == {**ALL_PASS, "latency_p99": "inconclusive"}
    assert "failed: connection refused" in results[2].detail
    assert overall_verdict(results) == "inconclusive"


async def test_prometheus_down_is_inconclusive_everywhere_never_skipped() -> None:
    results = await analyse(
        DownPrometheus(), canary="v2", stable="v1", window_seconds=300, config=CONFIG,
        require_labels=False, final_step=False,
    )  # fmt: skip
    assert verdicts(results) == dict.fromkeys(CHECKS, "inconclusive")
    assert all("failed" in r.detail for r in results)
    assert overall_verdict(results) == "inconclusive"


def test_queries_sum_over_instances_and_escape_label_values() -> None:
    queries = build_queries('v2"}) or vector(1) #', "v1\\", 300)
    traffic = queries["traffic"]["canary"]
    assert traffic == (
        'sum (increase(tagstream_classifier_predictions_total{model_version="v2\\"}) or '
        'vector(1) #"}[300s]))'
    )
    assert 'model_version="v1\\\\"' in queries["traffic"]["stable"]
    assert set(queries) == set(CHECKS)


@pytest.mark.parametrize(
    ("canary", "stable", "window"), [("v1", "v1", 60), ("", "v1", 60), ("v2", "v1", 0)]
)
def test_queries_refuse_nonsense(canary: str, stable: str, window: int) -> None:
    with pytest.raises(ValueError, match=r"must be at least 1|two different versions"):
        build_queries(canary, stable, window)


def one(value: float, **labels: str) -> list[Sample]:
    return [Sample(labels=labels, value=value)]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_latency_not_finite_is_inconclusive(value: float) -> None:
    q = {"canary": "c", "stable": "s"}
    result = judge_latency(q, {"c": one(value), "s": one(0.01)}, CONFIG)
    assert result.verdict == "inconclusive"
    assert result.values["canary"] is None


def test_latency_slack_for_fast_models() -> None:
    q = {"canary": "c", "stable": "s"}
    # 4 ms vs 1 ms is 4x, but within the 5 ms slack: noise at this scale.
    assert judge_latency(q, {"c": one(0.004), "s": one(0.001)}, CONFIG).verdict == "pass"
    assert judge_latency(q, {"c": one(0.0061), "s": one(0.001)}, CONFIG).verdict == "fail"
    assert judge_latency(q, {"c": one(0.15), "s": one(0.1)}, CONFIG).verdict == "pass"
    assert judge_latency(q, {"c": one(0.16), "s": one(0.1)}, CONFIG).verdict == "fail"


def test_error_rate_with_only_errors_fails() -> None:
    q = {
        n: n for n in ("canary_errors", "canary_predictions", "stable_errors", "stable_predictions")
    }
    results = {
        "canary_errors": one(20),
        "canary_predictions": one(0),
        "stable_errors": one(0),
        "stable_predictions": one(100),
    }
    result = judge_error_rate(q, results, CONFIG)
    assert (result.verdict, result.values["canary"]) == ("fail", 1.0)


def test_error_rate_without_errors_series_is_inconclusive() -> None:
    q = {
        n: n for n in ("canary_errors", "canary_predictions", "stable_errors", "stable_predictions")
    }
    results: dict[str, Any] = {
        "canary_errors": [],
        "canary_predictions": one(100),
        "stable_errors": one(0),
        "stable_predictions": one(100),
    }
    result = judge_error_rate(q, results, CONFIG)
    assert result.verdict == "inconclusive"
    assert "canary_errors query returned no data" in result.detail


def test_review_share_without_review_series_is_zero() -> None:
    q = {"canary": "c", "stable": "s"}
    results = {"c": one(100, route="auto"), "s": one(90, route="auto") + one(10, route="review")}
    result = judge_review_share(q, results, CONFIG)
    assert (result.verdict, result.values["canary"], result.values["stable"]) == ("pass", 0.0, 0.1)


def test_agreement_needs_compared_items() -> None:
    q = {"canary": "c"}
    assert judge_agreement(q, {"c": one(0, agreement="agree")}, CONFIG).verdict == "inconclusive"
    assert judge_agreement(q, {"c": one(80, agreement="agree")}, CONFIG).verdict == "pass"


def test_total_variation() -> None:
    assert total_variation({"a": 5, "b": 5}, {"a": 50, "b": 50}) == 0
    assert total_variation({"a": 1}, {"b": 1}) == 1
    assert total_variation({"a": 3, "b": 1}, {"a": 1, "b": 1}) == pytest.approx(0.25)


async def test_paired_check_fails_a_canary_worse_on_the_same_items() -> None:
    by_check = {r.check: r for r in await run("accuracy_worse")}
    accuracy = by_check["online_accuracy"]

    assert accuracy.verdict == "fail"
    assert accuracy.values["labeled"] == 500
    assert accuracy.values["canary"] == pytest.approx(0.70)
    assert accuracy.values["stable"] == pytest.approx(0.91)
    assert (accuracy.values["canary_only"], accuracy.values["stable_only"]) == (10, 115)
    assert accuracy.values["upper"] is not None
    assert accuracy.values["upper"] < -CONFIG.max_accuracy_drop
    assert accuracy.values["mcnemar_mid_p"] is not None
    assert accuracy.values["mcnemar_mid_p"] < 1e-6
    assert "500 labelled items both answered" in accuracy.detail


async def test_paired_check_passes_a_canary_as_good_and_lets_it_be_promoted() -> None:
    # Labels required and the final step: promotion waits for proof, and 500 paired
    # items are proof enough that the canary is no worse than 0.05.
    results = await run("good", require_labels=True, final_step=True)
    (accuracy,) = [r for r in results if r.check == "online_accuracy"]

    assert accuracy.verdict == "pass"
    assert accuracy.values["lower"] is not None
    assert accuracy.values["lower"] > -CONFIG.max_accuracy_drop
    assert overall_verdict(results) == "pass"


def test_paired_check_reads_outcomes_and_treats_missing_ones_as_zero() -> None:
    q = {"paired": "p"}
    samples = one(40, outcome="both_correct") + one(2, outcome="stable_only")
    result = judge_online_accuracy(
        q, {"p": samples}, CONFIG, require_labels=False, final_step=False
    )
    assert result.values["labeled"] == 42
    assert result.values["canary_only"] == 0
    assert result.values["canary"] == pytest.approx(40 / 42)
    assert result.values["stable"] == 1.0


def result(check: str, verdict: Verdict, detail: str = "why") -> CheckResult:
    return CheckResult(check, verdict, {}, {}, "rule", detail)


WAITING = CheckResult(
    "online_accuracy",
    "inconclusive",
    {},
    {},
    "rule",
    f"{WAITING_FOR_LABELS}: 3 of 30",
    waiting_for_labels=True,
)


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([result("traffic", "pass"), result("online_accuracy", "skipped")], "pass"),
        ([result("traffic", "pass"), WAITING], "hold"),
        ([result("traffic", "inconclusive"), WAITING], "inconclusive"),
        ([result("latency_p99", "fail"), WAITING], "fail"),
        ([result("traffic", "pass"), result("online_accuracy", "inconclusive")], "inconclusive"),
        # the words alone decide nothing: only the flag holds
        (
            [result("traffic", "pass"), result("online_accuracy", "inconclusive", WAITING.detail)],
            "inconclusive",
        ),
        ([result("traffic", "pass"), result("error_rate", "fail")], "fail"),
        ([result("online_accuracy", "skipped")], "inconclusive"),
        ([], "inconclusive"),
    ],
)
def test_overall_verdict(results: list[CheckResult], expected: str) -> None:
    assert overall_verdict(results) == expected


def test_to_dict_is_json_safe() -> None:
    check = CheckResult(
        "latency_p99",
        "inconclusive",
        {"canary": "q"},
        {"a": math.nan, "b": math.inf, "c": 1.5, "d": None},
        "r",
        "d",
    )
    data = check.to_dict()
    assert data["values"] == {"a": None, "b": None, "c": 1.5, "d": None}
    assert json.loads(json.dumps(data, allow_nan=False))["check"] == "latency_p99"


@pytest.mark.parametrize(
    "bad", [{"confidence": 1.0}, {"confidence": 0.5}, {"min_labeled": 0}, {"min_predictions": -1}]
)
def test_config_refuses_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        AnalysisConfig(**bad)


async def test_with_labels_required_the_final_step_holds_until_the_bounds_prove_it() -> None:
    # ... but a promotion that must wait for labels waits for proof, not for a count.
    results = await run("accuracy_unsure", require_labels=True, final_step=True)

    (accuracy,) = [r for r in results if r.check == "online_accuracy"]
    assert accuracy.verdict == "inconclusive"
    assert accuracy.waiting_for_labels
    assert accuracy.detail.startswith("waiting for labels")
    assert overall_verdict(results) == "hold"
