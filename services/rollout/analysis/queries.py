"""The analysis's queries: PromQL for each check, and running them against Prometheus.

Pure text building (:func:`build_queries`), so the queries can be recorded and replayed
in tests; :func:`run_queries` is the only part that talks to a server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from services.rollout.prometheus import PrometheusError, PromQuery, Sample, promql_string

QueryResult = list[Sample] | PrometheusError
Results = Mapping[str, QueryResult]
"""Query results keyed by the PromQL text that produced them."""

PREDICTIONS = "tagstream_classifier_predictions_total"
ERRORS = "tagstream_classifier_inference_errors_total"
INFERENCE_BUCKETS = "tagstream_classifier_inference_seconds_bucket"
AGREEMENT = "tagstream_classifier_agreement_total"
PAIRED = "tagstream_feedback_paired_labels"
"""Gold-labelled items both versions answered, by ``outcome`` (which of them was right)."""

CHECKS = (
    "traffic",
    "error_rate",
    "latency_p99",
    "review_share",
    "prediction_shift",
    "shadow_agreement",
    "online_accuracy",
)


def _selector(metric: str, version: str) -> str:
    return f"{metric}{{model_version={promql_string(version)}}}"


def _increase(metric: str, version: str, window_seconds: int, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (increase({_selector(metric, version)}[{window_seconds}s]))"


def _p99(version: str, window_seconds: int) -> str:
    return (
        f"histogram_quantile(0.99, {_increase(INFERENCE_BUCKETS, version, window_seconds, 'le')})"
    )


def _paired(canary: str, stable: str) -> str:
    """Paired label counts by outcome; max collapses feedback replicas (each exports all)."""
    selector = (
        f"{PAIRED}{{canary_version={promql_string(canary)},stable_version={promql_string(stable)}}}"
    )
    return f"max by (outcome) ({selector})"


def build_queries(canary: str, stable: str, window_seconds: int) -> dict[str, dict[str, str]]:
    """check -> query name -> PromQL, for every check in :data:`CHECKS`."""
    if window_seconds < 1:
        raise ValueError(f"window_seconds must be at least 1, got {window_seconds}")
    if not canary or not stable or canary == stable:
        raise ValueError(f"need two different versions, got canary={canary!r} stable={stable!r}")
    w = window_seconds
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
        # Not windowed: labels arrive long after the decisions, and every label on an
        # item both versions answered counts, from the shadow step on.
        "online_accuracy": {"paired": _paired(canary, stable)},
    }


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
