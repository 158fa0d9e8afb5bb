"""HTTP handlers of the feedback service (thin), client auth, and error responses.

Errors are answered in the one envelope of ``shared.http.errors``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError

from services.feedback.metrics import FeedbackMetrics
from services.feedback.service import (
    Report,
    ReportRejected,
    ReportService,
)
from shared.http import errors as shared_errors
from shared.http.errors import (
    FieldError,
    Refusal,
    error_responses,
    unavailable_without_detail,
)
from shared.kafka.producer import BrokerUnavailable
from shared.proportions import one_sided_z, wilson_interval
from shared.ratelimit import RateLimited
from shared.security import Forbidden, Unauthorized, bearer_client

log = structlog.get_logger("services.feedback")

MAX_COMMENT_CHARS = 2000


class ReportIn(BaseModel):
    """An end user says an item's tag is wrong and suggests the right one."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=64, description="The item's id.")
    suggested_tag: str = Field(min_length=1, max_length=200, description="An approved tag.")
    end_user_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"\S",
        description="The reporting end user's id in the downstream app: rate limit and "
        "votes are per end user (stored only as a digest).",
    )
    comment: str | None = Field(None, max_length=MAX_COMMENT_CHARS)


class ReportAccepted(BaseModel):
    label_id: str
    item_id: str
    status: str = "accepted"


_client_key = bearer_client(
    scheme_name="ReporterKey",
    variable="TAGSTREAM_FEEDBACK_API_KEYS",
    description="A key from TAGSTREAM_FEEDBACK_API_KEYS, as `Bearer <key>`.",
    api="the feedback API",
)


async def require_client(client: Annotated[str, Depends(_client_key)]) -> str:
    """The reporting client's id: a prefix of its key's digest, enough to tell clients apart."""
    return client[:16]


def get_reports(request: Request) -> ReportService:
    service: ReportService = request.app.state.feedback.reports
    return service


_ERRORS = error_responses(
    401,
    403,
    422,
    429,
    503,
    s401="Missing or invalid API key.",
    s403="A reviewer's token (`tsr_…`): reports need a key from TAGSTREAM_FEEDBACK_API_KEYS.",
    s429="Too many reports from this end user or client; see Retry-After.",
    s503="Broker unavailable; retry after Retry-After seconds.",
)

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post(
    "/reports",
    status_code=202,
    response_model=ReportAccepted,
    responses=_ERRORS,
    summary="Report a wrong tag; accepted once the report is on feedback.labels",
    description="The report puts the item in the review queue (reason `user_report`, "
    "ahead of ordinary items); it becomes a gold label only through a reviewer's label.",
)
async def post_report(
    report: ReportIn,
    service: Annotated[ReportService, Depends(get_reports)],
    client: Annotated[str, Depends(require_client)],
    request: Request,
) -> ReportAccepted:
    label = await service.submit(
        Report(report.item_id, report.suggested_tag, report.end_user_id, report.comment),
        client=client,
    )
    request.app.state.metrics.reports.labels(result="accepted").inc()
    log.info("report_accepted", item_id=label.item_id, label_id=label.label_id)
    return ReportAccepted(label_id=label.label_id, item_id=label.item_id)


@router.get(
    "/accuracy",
    summary="Online accuracy per model version and role",
    responses=error_responses(503, s503="Database unavailable; retry."),
)
async def get_accuracy(request: Request) -> dict[str, Any]:
    state = request.app.state.feedback
    monitor = state.monitor
    by_route = await state.run_blocking(state.store.accuracy_by_route)
    z = one_sided_z(monitor.settings.feedback_precision_confidence)
    return {
        "versions": [
            {
                "model_version": r.model_version,
                "role": r.role,
                "samples": r.samples,
                "correct": r.correct,
                "accuracy": r.accuracy,
            }
            for r in monitor.accuracy
        ],
        "by_route": by_route,
        # what users get: precision of auto-accepted items on the audit sample only
        "audit_precision": [
            {
                "model_version": r.model_version,
                "samples": r.samples,
                "correct": r.correct,
                "precision": r.correct / r.samples,
                "lower": lower,
                "upper": upper,
            }
            for r in monitor.audit
            if r.samples
            for lower, upper in [wilson_interval(r.correct, r.samples, z)]
        ],
        "confidence": monitor.settings.feedback_precision_confidence,
        # canary vs stable on the same labelled items (what the rollout's check reads)
        "paired": [asdict(r) for r in monitor.paired],
        **monitor.summary(),
    }


_RESULTS: dict[type[Exception], str] = {
    RequestValidationError: "invalid",
    ReportRejected: "invalid",
    Unauthorized: "unauthorized",
    Forbidden: "forbidden",
    RateLimited: "rate_limited",
    BrokerUnavailable: "unavailable",
}


def _count_report(request: Request, exc: Exception, refusal: Refusal) -> None:
    result = _RESULTS.get(type(exc))
    if result is not None:
        metrics: FeedbackMetrics = request.app.state.metrics
        metrics.reports.labels(result=result).inc()


def _rejected(exc: Exception) -> Refusal:
    assert isinstance(exc, ReportRejected)
    return Refusal(422, [FieldError(exc.field, exc.reason)])


def install_error_handlers(app: FastAPI, *, retry_after_seconds: int) -> None:
    """The shared envelope; feedback adds its refusals and counts every report refused."""
    shared_errors.install_error_handlers(
        app,
        refusals={
            ReportRejected: _rejected,
            OperationalError: unavailable_without_detail("database", retry_after_seconds),
        },
        unavailable={BrokerUnavailable: "broker"},
        retry_after_seconds=retry_after_seconds,
        observe=_count_report,
    )
