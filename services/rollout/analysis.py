"""Canary analysis: compare a canary model version with the stable one on Prometheus metrics.

Two layers. :func:`build_queries` and :func:`judge` are pure: PromQL text out, query results
in, one :class:`CheckResult` per check — testable on recorded series without a server.
:func:`analyse` only runs the queries and hands the results to :func:`judge`.

The rule everywhere: a failed query, an empty result, NaN or ±Inf makes that check
*inconclusive*, never a pass (SPEC §6, §11: "no data" and "no traffic" have promoted and
aborted canaries elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

from services.rollout.prometheus import PrometheusError, PromQuery, Sample, promql_string

Verdict = Literal["pass", "fail", "inconclusive", "skipped"]
Overall = Literal["pass", "fail", "inconclusive", "hold"]
QueryResult = list[Sample] | PrometheusError
Results = Mapping[str, QueryResult]
"""Query results keyed by the PromQL text that produced them."""

PREDICTIONS = "tagstream_classifier_predictions_total"
ERRORS = "tagstream_classifier_inference_errors_total"
INFERENCE_BUCKETS = "tagstream_classifier_inference_seconds_bucket"
AGREEMENT = "tagstream_classifier_agreement_total"
ACCURACY = "tagstream_feedback_online_accuracy"
LABELED = "tagstream_feedback_online_samples"

CHECKS = (
    "traffic",
    "error_rate",
    "latency_p99",
    "review_share",
    "prediction_shift",
    "shadow_agreement",
    "online_accuracy",
)
WAITING_FOR_LABELS = "waiting for labels"
"""Start of the detail of an online_accuracy check that holds the final step."""


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict with the queries and values that drove it."""

    check: str
    verdict: Verdict
    queries: dict[str, str]
    values: dict[str, float | None]
    threshold: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: NaN and infinities become None; ``query`` is every query on a line."""
        data = asdict(self)
        data["query"] = "\n".join(f"{name}: {q}" for name, q in self.queries.items())
        data["values"] = {
            k: v if v is None or math.isfinite(v) else None for k, v in self.values.items()
        }
        return data


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
    """Gold-labeled items per version before online accuracy is judged."""
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


# ---------------------------------------------------------------- queries


def _selector(metric: str, version: str) -> str:
    return f"{metric}{{model_version={promql_string(version)}}}"


def _increase(metric: str, version: str, window_seconds: int, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (increase({_selector(metric, version)}[{window_seconds}s]))"


def _p99(version: str, window_seconds: int) -> str:
    return (
        f"histogram_quantile(0.99, {_increase(INFERENCE_BUCKETS, version, window_seconds, 'le')})"
    )


def _labeled(version: str) -> tuple[str, str]:
    """Gold-labeled items and correct ones, over roles; max collapses feedback replicas."""
    samples = _selector(LABELED, version)
    accuracy = _selector(ACCURACY, version)
    return (
        f"sum(max by (model_version, role) ({samples}))",
        f"sum(max by (model_version, role) (round({accuracy} * {samples})))",
    )


def build_queries(canary: str, stable: str, window_seconds: int) -> dict[str, dict[str, str]]:
    """check -> query name -> PromQL, for every check in :data:`CHECKS`."""
    if window_seconds < 1:
        raise ValueError(f"window_seconds must be at least 1, got {window_seconds}")
    if not canary or not stable or canary == stable:
        raise ValueError(f"need two different versions, got canary={canary!r} stable={stable!r}")
    w = window_seconds
    c_samples, c_correct = _labeled(canary)
    s_samples, s_correct = _labeled(stable)
    return {
        "traffic": {
            "canary": _increase(PREDICTIONS, canary, w),
            "stable": _increase(PREDICTIONS, stable, w),
        },
        "error_rate": {
            "canary_errors": _increase(ERRORS, canary, w),
            "canary_predictions": _increase(PREDICTIONS, canary, w),
            "stable_errors": _increase(ERRORS, stable, w),
            "stable_predictions": _increase(PREDICTIONS, stable, w),
        },
        "latency_p99": {"canary": _p99(canary, w), "stable": _p99(stable, w)},
        "review_share": {
            "canary": _increase(PREDICTIONS, canary, w, "route"),
            "stable": _increase(PREDICTIONS, stable, w, "route"),
        },
        "prediction_shift": {
            "canary": _increase(PREDICTIONS, canary, w, "tag"),
            "stable": _increase(PREDICTIONS, stable, w, "tag"),
        },
        "shadow_agreement": {"canary": _increase(AGREEMENT, canary, w, "agreement")},
        "online_accuracy": {
            "canary_labeled": c_samples,
            "canary_correct": c_correct,
            "stable_labeled": s_samples,
            "stable_correct": s_correct,
        },
    }


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
) -> CheckResult:
    return CheckResult(check, verdict, dict(queries), dict(values), threshold, detail)


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


def total_variation(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Half the L1 distance between two count maps normalised to shares (0 = same, 1 = disjoint)."""
    total_a, total_b = sum(a.values()), sum(b.values())
    return 0.5 * sum(
        abs(a.get(k, 0.0) / total_a - b.get(k, 0.0) / total_b) for k in set(a) | set(b)
    )


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
    moved = max(
        set(canary) | set(stable),
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


def wilson_interval(successes: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval for a proportion (bounds at ``z`` standard errors)."""
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_bounds(
    correct_a: float, n_a: float, correct_b: float, n_b: float, confidence: float
) -> tuple[float, float]:
    """One-sided ``confidence`` bounds (lower, upper) of p_a - p_b; Newcombe's hybrid score method.

    At confidence c each bound alone holds with probability c (the pair is a two-sided
    2c-1 interval). The versions are treated as independent samples; they are in fact scored
    on overlapping items, which only makes this conservative.
    """
    z = NormalDist().inv_cdf(confidence)
    p_a, p_b = correct_a / n_a, correct_b / n_b
    low_a, high_a = wilson_interval(correct_a, n_a, z)
    low_b, high_b = wilson_interval(correct_b, n_b, z)
    d = p_a - p_b
    return (
        d - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2),
        d + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2),
    )


def judge_online_accuracy(
    q: Mapping[str, str],
    results: Results,
    config: AnalysisConfig,
    *,
    require_labels: bool,
    final_step: bool,
) -> CheckResult:
    """Non-inferiority of the canary's online accuracy, once both versions have labels.

    The feedback service exports a series only for versions that have gold labels, so an
    empty labeled-count result means zero labels; a failed query is still inconclusive.
    """
    margin = config.max_accuracy_drop
    threshold = (
        f"{config.confidence:.0%} one-sided bounds of canary - stable accuracy: fail when the "
        f"upper bound < -{margin:g}; with labels required, the final step holds until the "
        f"lower bound > -{margin:g}; "
        f"judged from {config.min_labeled} gold labels per version"
    )
    keys = ("canary", "stable", "canary_labeled", "stable_labeled", "lower", "upper")
    values: dict[str, float | None] = dict.fromkeys(keys)
    labeled: dict[str, float] = {}
    try:
        for role in ("canary", "stable"):
            samples = _samples(results, f"{role}_labeled", q[f"{role}_labeled"])
            count = _finite(f"{role}_labeled", sum(s.value for s in samples or []))
            labeled[role] = values[f"{role}_labeled"] = count
    except _NoData as exc:
        return _result("online_accuracy", "inconclusive", q, values, threshold, f"{exc}.")
    if min(labeled.values()) < config.min_labeled:
        counts = (
            f"needs {config.min_labeled} gold labels per version, has "
            f"{labeled['canary']:.0f} for the canary and {labeled['stable']:.0f} for stable."
        )
        if require_labels and final_step:
            detail = f"{WAITING_FOR_LABELS}: {counts}"
            return _result("online_accuracy", "inconclusive", q, values, threshold, detail)
        return _result("online_accuracy", "skipped", q, values, threshold, f"skipped: {counts}")
    correct: dict[str, float] = {}
    try:
        for role in ("canary", "stable"):
            right = _single(results, f"{role}_correct", q[f"{role}_correct"])
            correct[role] = min(max(right, 0.0), labeled[role])
            values[role] = correct[role] / labeled[role]
    except _NoData as exc:
        return _result("online_accuracy", "inconclusive", q, values, threshold, f"{exc}.")
    lower, upper = newcombe_bounds(
        correct["canary"],
        labeled["canary"],
        correct["stable"],
        labeled["stable"],
        config.confidence,
    )
    values["lower"], values["upper"] = lower, upper
    verdict: Verdict
    if upper < -margin:
        verdict, why = "fail", "confidently worse than stable by more than the margin"
    elif lower > -margin:
        verdict, why = "pass", "confidently no worse than stable beyond the margin"
    elif require_labels and final_step:
        # Promotion was asked to wait for proof: more labels narrow the bounds.
        detail = (
            f"{WAITING_FOR_LABELS}: canary - stable accuracy is between {lower:+.3f} and "
            f"{upper:+.3f}, not enough evidence either way yet."
        )
        return _result("online_accuracy", "inconclusive", q, values, threshold, detail)
    else:
        # A guard, as for the other checks: a canary is stopped when its labels show it
        # worse; a sample too small to prove it no worse does not roll a canary back.
        verdict, why = "pass", "not shown worse than stable (too few labels to prove it no worse)"
    detail = (
        f"accuracy {correct['canary'] / labeled['canary']:.3f} on the canary vs "
        f"{correct['stable'] / labeled['stable']:.3f} on stable, difference between "
        f"{lower:+.3f} and {upper:+.3f}: {why}."
    )
    return _result("online_accuracy", verdict, q, values, threshold, detail)


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


def is_waiting_for_labels(result: CheckResult) -> bool:
    return (
        result.check == "online_accuracy"
        and result.verdict == "inconclusive"
        and result.detail.startswith(WAITING_FOR_LABELS)
    )


def overall_verdict(results: Sequence[CheckResult]) -> Overall:
    """fail > hold (only waiting for labels) > inconclusive > pass; skipped never blocks.

    With no check passed at all (e.g. no results) the verdict is inconclusive.
    """
    if any(r.verdict == "fail" for r in results):
        return "fail"
    blocking = [r for r in results if r.verdict not in ("pass", "skipped")]
    if blocking and all(is_waiting_for_labels(r) for r in blocking):
        return "hold"
    if blocking or not any(r.verdict == "pass" for r in results):
        return "inconclusive"
    return "pass"


# ---------------------------------------------------------------- running


async def run_queries(
    prom: PromQuery, promqls: Iterable[str], *, concurrency: int = 4
) -> dict[str, QueryResult]:
    """Each distinct query once, a few at a time; failures kept as results, not raised."""
    gate = asyncio.Semaphore(concurrency)

    async def one(promql: str) -> QueryResult:
        async with gate:
            try:
                return await prom.query(promql)
            except PrometheusError as exc:
                return exc

    unique = list(dict.fromkeys(promqls))
    return dict(zip(unique, await asyncio.gather(*(one(q) for q in unique)), strict=True))


async def analyse(
    prom: PromQuery,
    *,
    canary: str,
    stable: str,
    window_seconds: int,
    config: AnalysisConfig,
    require_labels: bool,
    final_step: bool,
) -> list[CheckResult]:
    """Run every check for ``canary`` against ``stable`` over the last ``window_seconds``.

    Never raises for Prometheus trouble: those checks come back inconclusive. Raises
    ValueError for a window below 1 s or two equal versions.
    """
    queries = build_queries(canary, stable, window_seconds)
    results = await run_queries(prom, (p for named in queries.values() for p in named.values()))
    return judge(queries, results, config, require_labels=require_labels, final_step=final_step)
