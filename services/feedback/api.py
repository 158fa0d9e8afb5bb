"""HTTP handlers of the feedback service (thin), client auth, and error responses.

Every error body has one shape: ``{"detail": [{"field": ..., "reason": ...}]}``.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.feedback.metrics import FeedbackMetrics
from services.feedback.service import (
    BrokerUnavailable,
    RateLimited,
    Report,
    ReportRejected,
    ReportService,
)
from shared.security import Unauthorized, bearer_client

log = structlog.get_logger("services.feedback")

MAX_COMMENT_CHARS = 2000


class ReportIn(BaseModel):
    """An end user says an item's tag is wrong and suggests the right one."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=64, description="The item's id.")
    suggested_tag: str = Field(min_length=1, max_length=200, description="An approved tag.")
    comment: str | None = Field(None, max_length=MAX_COMMENT_CHARS)


class ReportAccepted(BaseModel):
    label_id: str
    item_id: str
    status: str = "accepted"


class FieldErrorOut(BaseModel):
    field: str | None
    reason: str


class ErrorBody(BaseModel):
    detail: list[FieldErrorOut]


_client_key = bearer_client(
    scheme_name="ReporterKey",
    variable="TAGSTREAM_FEEDBACK_API_KEYS",
    description="A key from TAGSTREAM_FEEDBACK_API_KEYS, as `Bearer <key>`.",
)


async def require_client(client: Annotated[str, Depends(_client_key)]) -> str:
    """The reporting client's id: a prefix of its key's digest, enough to tell clients apart."""
    return client[:16]


def get_reports(request: Request) -> ReportService:
    service: ReportService = request.app.state.feedback.reports
    return service


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid API key."},
    422: {"model": ErrorBody, "description": "Invalid input: each field and reason."},
    429: {"model": ErrorBody, "description": "Too many reports; see Retry-After."},
    503: {"model": ErrorBody, "description": "Broker unavailable; retry."},
}

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post(
    "/reports",
    status_code=202,
    response_model=ReportAccepted,
    responses=_ERRORS,
    summary="Report a wrong tag; accepted once the label is on feedback.labels",
)
async def post_report(
    report: ReportIn,
    service: Annotated[ReportService, Depends(get_reports)],
    client: Annotated[str, Depends(require_client)],
    request: Request,
) -> ReportAccepted:
    label = await service.submit(
        Report(report.item_id, report.suggested_tag, report.comment), client=client
    )
    request.app.state.metrics.reports.labels(result="accepted").inc()
    log.info("report_accepted", item_id=label.item_id, label_id=label.label_id)
    return ReportAccepted(label_id=label.label_id, item_id=label.item_id)


@router.get("/accuracy", summary="Online accuracy per model version and role")
async def get_accuracy(request: Request) -> dict[str, Any]:
    state = request.app.state.feedback
    monitor = state.monitor
    by_route = await state.run_blocking(state.store.accuracy_by_route)
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
        **monitor.summary(),
    }


def _error(
    status: int, field: str | None, reason: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(detail=[FieldErrorOut(field=field, reason=reason)])
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, *, retry_after_seconds: int) -> None:
    def metrics(request: Request) -> FeedbackMetrics:
        found: FeedbackMetrics = request.app.state.metrics
        return found

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        metrics(request).reports.labels(result="invalid").inc()
        details = [
            FieldErrorOut(
                field=".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
                reason=str(e.get("msg", "invalid")),
            )
            for e in exc.errors()
        ]
        return JSONResponse(ErrorBody(detail=details).model_dump(mode="json"), status_code=422)

    async def rejected(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ReportRejected)
        metrics(request).reports.labels(result="invalid").inc()
        return _error(422, exc.field, exc.reason)

    async def unauthorized(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Unauthorized)
        metrics(request).reports.labels(result="unauthorized").inc()
        return _error(401, "Authorization", exc.reason, {"WWW-Authenticate": "Bearer"})

    async def limited(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RateLimited)
        metrics(request).reports.labels(result="rate_limited").inc()
        retry = str(exc.retry_after_seconds)
        return _error(429, None, str(exc), {"Retry-After": retry})

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        metrics(request).reports.labels(result="unavailable").inc()
        log.warning("broker_unavailable", error=str(exc))
        reason = f"the broker is unavailable ({exc}); retry after {retry_after_seconds} s"
        return _error(503, None, reason, {"Retry-After": str(retry_after_seconds)})

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            return _error(422, "body", "invalid JSON: cannot parse the body")
        headers = dict(exc.headers) if exc.headers else None
        return _error(exc.status_code, None, str(exc.detail), headers)

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ReportRejected, rejected)
    app.add_exception_handler(Unauthorized, unauthorized)
    app.add_exception_handler(RateLimited, limited)
    app.add_exception_handler(BrokerUnavailable, unavailable)
    app.add_exception_handler(StarletteHTTPException, http_error)
