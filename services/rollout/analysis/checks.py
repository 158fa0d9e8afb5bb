"""The checks: each turns its queries' results into a verdict against a threshold.

The rule everywhere: a failed query, an empty result, NaN or ±Inf makes that check
*inconclusive*, never a pass (SPEC §6, §11: "no data" and "no traffic" have promoted and
aborted canaries elsewhere).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

from services.rollout.analysis.queries import Results
from services.rollout.analysis.statistics import (
    PairedCounts,
    mcnemar_mid_p,
    paired_difference_bounds,
    total_variation,
)
from services.rollout.analysis.verdicts import WAITING_FOR_LABELS, CheckResult, Verdict
from services.rollout.prometheus import PrometheusError, Sample


@dataclass(frozen=True)
class AnalysisConfig:
    min_predictions: int = 50
    """Canary predictions in the window below this: "traffic" inconclusive (no traffic)."""
    max_error_rate_increase: float = 0.01
    max_latency_ratio: float = 1.5
    """canary p99 <= max(stable p99 * ratio, stable p99 + latency_slack_seconds)."""
    latency_slack_seconds: float = 0.005
    max_review_share_increase: float = 0.10
    max_prediction_shift: float = 0.15
    """Total variation distance between the two versions' tag shares."""
    min_agreement: float = 0.80
    min_labeled: int = 30
    """Gold-labelled items answered by both versions before online accuracy is judged."""
    max_accuracy_drop: float = 0.05
    """Non-inferiority margin for online accuracy."""
    confidence: float = 0.95
    """One-sided confidence of each accuracy bound."""

    def __post_init__(self) -> None:
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0.5, 1), got {self.confidence}")
        if self.min_labeled < 1 or self.min_predictions < 0:
            raise ValueError("min_labeled must be at least 1 and min_predictions not negative")


class _NoData(Exception):
    """A value the check needs is missing, failed or not finite; the message says which."""


# ---------------------------------------------------------------- reading results


def _samples(results: Results, name: str, promql: str) -> list[Sample] | None:
    """The samples of one query; None when the result is empty."""
    result = results.get(promql)
    if result is None:
        raise _NoData(f"the {name} query was not run")
    if isinstance(result, PrometheusError):
        raise _NoData(f"the {name} query failed: {result}")
    return result or None


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        shown = "NaN" if math.isnan(value) else f"{value:+}".replace("inf", "Inf")
        raise _NoData(f"{name} is {shown}")
    return value


def _single(results: Results, name: str, promql: str) -> float:
    samples = _samples(results, name, promql)
    if samples is None:
        raise _NoData(f"the {name} query returned no data")
    if len(samples) != 1:
        raise _NoData(f"the {name} query returned {len(samples)} series, expected one")
    return _finite(name, samples[0].value)


def _by_label(results: Results, name: str, promql: str, label: str) -> dict[str, float]:
    samples = _samples(results, name, promql)
    if samples is None:
        raise _NoData(f"the {name} query returned no data")
    counts: dict[str, float] = {}
    for s in samples:
        key = s.labels.get(label, "")
        counts[key] = counts.get(key, 0.0) + _finite(f"{name} {label}={key!r}", s.value)
    return counts


def _positive_total(name: str, counts: Mapping[str, float]) -> float:
    total = sum(counts.values())
    if total <= 0:
        raise _NoData(f"{name} scored no items in the window")
    return total


# ---------------------------------------------------------------- the checks


def _result(
    check: str,
    verdict: Verdict,
    queries: Mapping[str, str],
    values: Mapping[str, float | None],
    threshold: str,
    detail: str,
    *,
    waiting_for_labels: bool = False,
) -> CheckResult:
    return CheckResult(
        check,
        verdict,
        dict(queries),
        dict(values),
        threshold,
        detail,
        waiting_for_labels=waiting_for_labels,
    )


def judge_traffic(q: Mapping[str, str], results: Results, config: AnalysisConfig) -> CheckResult:
    threshold = f"canary predictions in the window >= {config.min_predictions}"
    values: dict[str, float | None] = {"canary": None, "stable": None}
    # The stable model's traffic is shown for context only, not judged.
    with contextlib.suppress(_NoData):
        values["stable"] = _single(results, "stable", q["stable"])
    try:
        canary = values["canary"] = _single(results, "canary", q["canary"])
    except _NoData as exc:
        return _result("traffic", "inconclusive", q, values, threshold, f"{exc}.")
    if canary < config.min_predictions:
        detail = f"the canary scored only {canary:.0f} items, fewer than {config.min_predictions}."
        return _result("traffic", "inconclusive", q, values, threshold, detail)
    return _result(
        "traffic", "pass", q, values, threshold, f"the canary scored {canary:.0f} items."
    )


def judge_error_rate(q: Mapping[str, str], results: Results, config: AnalysisConfig) -> CheckResult:
    limit = config.max_error_rate_increase
    threshold = f"canary - stable <= {limit:g} (rate = errors / (errors + predictions))"
    values: dict[str, float | None] = {"canary": None, "stable": None}
    rates: dict[str, float] = {}
    try:
        for role in ("canary", "stable"):
            errors = _single(results, f"{role}_errors", q[f"{role}_errors"])
            predictions = _single(results, f"{role}_predictions", q[f"{role}_predictions"])
            if errors + predictions <= 0:
                raise _NoData(f"the {role} model scored no items in the window")
            rates[role] = values[role] = errors / (errors + predictions)
    except _NoData as exc:
        return _result("error_rate", "inconclusive", q, values, threshold, f"{exc}.")
    canary, stable = rates["canary"], rates["stable"]
    verdict: Verdict = "pass" if canary - stable <= limit else "fail"
    detail = f"error rate {canary:.4f} on the canary vs {stable:.4f} on stable."
    return _result("error_rate", verdict, q, values, threshold, detail)


def judge_latency(q: Mapping[str, str], results: Results, config: AnalysisConfig) -> CheckResult:
    ratio, slack = config.max_latency_ratio, config.latency_slack_seconds
    threshold = f"canary p99 <= max(stable p99 * {ratio:g}, stable p99 + {slack:g}s)"
    values: dict[str, float | None] = {"canary": None, "stable": None, "limit": None}
    try:
        # NaN here means no batch was timed in the window.
        canary = values["canary"] = _single(results, "canary p99", q["canary"])
        stable = values["stable"] = _single(results, "stable p99", q["stable"])
    except _NoData as exc:
        return _result("latency_p99", "inconclusive", q, values, threshold, f"{exc}.")
    limit = values["limit"] = max(stable * ratio, stable + slack)
    verdict: Verdict = "pass" if canary <= limit else "fail"
    detail = (
        f"p99 per batch {canary:.4f}s on the canary vs {stable:.4f}s on stable "
        f"(limit {limit:.4f}s)."
    )
    return _result("latency_p99", verdict, q, values, threshold, detail)


def judge_review_share(
    q: Mapping[str, str], results: Results, config: AnalysisConfig
) -> CheckResult:
    limit = config.max_review_share_increase
    threshold = f"canary - stable <= {limit:g} (share of items routed to review)"
    values: dict[str, float | None] = {"canary": None, "stable": None}
    shares: dict[str, float] = {}
    try:
        for role in ("canary", "stable"):
            routes = _by_label(results, role, q[role], "route")
            total = _positive_total(f"the {role} model", routes)
            shares[role] = values[role] = routes.get("review", 0.0) / total
    except _NoData as exc:
        return _result("review_share", "inconclusive", q, values, threshold, f"{exc}.")
    canary, stable = shares["canary"], shares["stable"]
    verdict: Verdict = "pass" if canary - stable <= limit else "fail"
    detail = f"the canary would send {canary:.1%} of items to review, stable {stable:.1%}."
    return _result("review_share", verdict, q, values, threshold, detail)


def judge_prediction_shift(
    q: Mapping[str, str], results: Results, config: AnalysisConfig
) -> CheckResult:
    limit = config.max_prediction_shift
    threshold = f"total variation distance between tag shares <= {limit:g}"
    values: dict[str, float | None] = {"distance": None}
    try:
        canary = _by_label(results, "canary", q["canary"], "tag")
        stable = _by_label(results, "stable", q["stable"], "tag")
        c_total = _positive_total("the canary", canary)
        s_total = _positive_total("the stable model", stable)
    except _NoData as exc:
        return _result("prediction_shift", "inconclusive", q, values, threshold, f"{exc}.")
    distance = values["distance"] = total_variation(canary, stable)
    # sorted: of tags that moved equally, always name the same one (sets vary per run)
    moved = max(
        sorted(set(canary) | set(stable)),
        key=lambda t: abs(canary.get(t, 0.0) / c_total - stable.get(t, 0.0) / s_total),
    )
    verdict: Verdict = "pass" if distance <= limit else "fail"
    detail = (
        f"tag shares differ by {distance:.3f} (most for {moved!r}: "
        f"{canary.get(moved, 0.0) / c_total:.1%} on the canary, "
        f"{stable.get(moved, 0.0) / s_total:.1%} on stable)."
    )
    return _result("prediction_shift", verdict, q, values, threshold, detail)


def judge_agreement(q: Mapping[str, str], results: Results, config: AnalysisConfig) -> CheckResult:
    limit = config.min_agreement
    threshold = f"agree / (agree + disagree) >= {limit:g}"
    values: dict[str, float | None] = {"agreement": None}
    try:
        counts = _by_label(results, "canary", q["canary"], "agreement")
        compared = counts.get("agree", 0.0) + counts.get("disagree", 0.0)
        if compared <= 0:
            raise _NoData("no item was compared with the stable model in the window")
    except _NoData as exc:
        return _result("shadow_agreement", "inconclusive", q, values, threshold, f"{exc}.")
    agreement = values["agreement"] = counts.get("agree", 0.0) / compared
    verdict: Verdict = "pass" if agreement >= limit else "fail"
    detail = f"the canary's top tag matched stable's on {agreement:.1%} of {compared:.0f} items."
    return _result("shadow_agreement", verdict, q, values, threshold, detail)


OUTCOMES = {
    "both_correct": "both",
    "canary_only": "a_only",
    "stable_only": "b_only",
    "neither_correct": "neither",
}
"""The feedback service's ``outcome`` label values -> the fields of :class:`PairedCounts`."""


def judge_online_accuracy(
    q: Mapping[str, str],
    results: Results,
    config: AnalysisConfig,
    *,
    require_labels: bool,
    final_step: bool,
) -> CheckResult:
    """Non-inferiority of the canary's accuracy, paired on the items both versions answered.

    While a canary exists the classifier records both versions' answers for every item,
    so each gold-labelled item says which of the two was right: the comparison is on the
    same items (paired), and only the items where they differ move it. The feedback
    service exports a series only for pairs that have labels, so an empty result means
    zero labels; a failed query is still inconclusive.
    """
    margin = config.max_accuracy_drop
    threshold = (
        f"{config.confidence:.0%} one-sided paired bounds (Newcombe) of canary - stable "
        f"accuracy on the same labelled items: fail when the upper bound < -{margin:g}; with "
        f"labels required, the final step holds until the lower bound > -{margin:g}; "
        f"judged from {config.min_labeled} labelled items answered by both"
    )
    keys = ("canary", "stable", "labeled", "canary_only", "stable_only", "lower", "upper")
    values: dict[str, float | None] = dict.fromkeys((*keys, "mcnemar_mid_p"))
    try:
        samples = _samples(results, "paired", q["paired"]) or []
        found = {
            s.labels.get("outcome", ""): _finite(f"paired {s.labels.get('outcome')}", s.value)
            for s in samples
        }
    except _NoData as exc:
        return _result("online_accuracy", "inconclusive", q, values, threshold, f"{exc}.")
    counts = PairedCounts(
        **{field: max(found.get(outcome, 0.0), 0.0) for outcome, field in OUTCOMES.items()}
    )
    values["labeled"] = counts.n
    values["canary_only"], values["stable_only"] = counts.a_only, counts.b_only
    if counts.n < config.min_labeled:
        have = (
            f"needs {config.min_labeled} labelled items answered by both versions, "
            f"has {counts.n:.0f}."
        )
        if require_labels and final_step:
            return _waiting_for_labels(q, values, threshold, f"{WAITING_FOR_LABELS}: {have}")
        return _result("online_accuracy", "skipped", q, values, threshold, f"skipped: {have}")
    values["canary"], values["stable"] = counts.accuracy_a, counts.accuracy_b
    lower, upper = paired_difference_bounds(counts, config.confidence)
    values["lower"], values["upper"] = lower, upper
    values["mcnemar_mid_p"] = mcnemar_mid_p(counts)
    verdict: Verdict
    if upper < -margin:
        verdict, why = "fail", "confidently worse than stable by more than the margin"
    elif lower > -margin:
        verdict, why = "pass", "confidently no worse than stable beyond the margin"
    elif require_labels and final_step:
        # Promotion was asked to wait for proof: more labels narrow the bounds.
        detail = (
            f"{WAITING_FOR_LABELS}: canary - stable accuracy on {counts.n:.0f} shared items "
            f"is between {lower:+.3f} and {upper:+.3f}, not enough evidence either way yet."
        )
        return _waiting_for_labels(q, values, threshold, detail)
    else:
        # A guard, as for the other checks: a canary is stopped when its labels show it
        # worse; a sample too small to prove it no worse does not roll a canary back.
        verdict, why = "pass", "not shown worse than stable (too few labels to prove it no worse)"
    detail = (
        f"on {counts.n:.0f} labelled items both answered: accuracy {counts.accuracy_a:.3f} on "
        f"the canary vs {counts.accuracy_b:.3f} on stable ({counts.a_only:.0f} right only on "
        f"the canary, {counts.b_only:.0f} only on stable), difference between {lower:+.3f} "
        f"and {upper:+.3f}: {why}."
    )
    return _result("online_accuracy", verdict, q, values, threshold, detail)


def _waiting_for_labels(
    q: Mapping[str, str], values: Mapping[str, float | None], threshold: str, detail: str
) -> CheckResult:
    """The final step held for labels: inconclusive, but a hold rather than a count."""
    return _result(
        "online_accuracy", "inconclusive", q, values, threshold, detail, waiting_for_labels=True
    )


def judge(
    queries: Mapping[str, Mapping[str, str]],
    results: Results,
    config: AnalysisConfig,
    *,
    require_labels: bool,
    final_step: bool,
) -> list[CheckResult]:
    """Every check's verdict from the results of :func:`build_queries`' queries."""
    return [
        judge_traffic(queries["traffic"], results, config),
        judge_error_rate(queries["error_rate"], results, config),
        judge_latency(queries["latency_p99"], results, config),
        judge_review_share(queries["review_share"], results, config),
        judge_prediction_shift(queries["prediction_shift"], results, config),
        judge_agreement(queries["shadow_agreement"], results, config),
        judge_online_accuracy(
            queries["online_accuracy"],
            results,
            config,
            require_labels=require_labels,
            final_step=final_step,
        ),
    ]
