"""Canary analysis: compare a canary model version with the stable one on Prometheus metrics.

Two layers. :func:`build_queries` (``queries``) and :func:`judge` (``checks``) are pure:
PromQL text out, query results in, one :class:`CheckResult` per check (``verdicts``) —
testable on recorded series without a server; ``statistics`` holds the bounds the
accuracy check uses (paired: both versions' answers on the same labelled items).
:func:`analyse` only runs the queries and hands the results to :func:`judge`.

The rule everywhere: a failed query, an empty result, NaN or ±Inf makes that check
*inconclusive*, never a pass (SPEC §6, §11: "no data" and "no traffic" have promoted and
aborted canaries elsewhere).
"""

from __future__ import annotations

from services.rollout.analysis.checks import (
    AnalysisConfig,
    judge,
    judge_agreement,
    judge_error_rate,
    judge_latency,
    judge_online_accuracy,
    judge_prediction_shift,
    judge_review_share,
    judge_traffic,
)
from services.rollout.analysis.queries import (
    CHECKS,
    QueryResult,
    Results,
    build_queries,
    run_queries,
)
from services.rollout.analysis.statistics import (
    PairedCounts,
    mcnemar_mid_p,
    paired_difference_bounds,
    total_variation,
    wilson_interval,
)
from services.rollout.analysis.verdicts import (
    WAITING_FOR_LABELS,
    CheckResult,
    Overall,
    Verdict,
    overall_verdict,
)
from services.rollout.prometheus import PromQuery

__all__ = [
    "CHECKS",
    "WAITING_FOR_LABELS",
    "AnalysisConfig",
    "CheckResult",
    "Overall",
    "PairedCounts",
    "PromQuery",
    "QueryResult",
    "Results",
    "Verdict",
    "analyse",
    "build_queries",
    "judge",
    "judge_agreement",
    "judge_error_rate",
    "judge_latency",
    "judge_online_accuracy",
    "judge_prediction_shift",
    "judge_review_share",
    "judge_traffic",
    "mcnemar_mid_p",
    "overall_verdict",
    "paired_difference_bounds",
    "run_queries",
    "total_variation",
    "wilson_interval",
]


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
