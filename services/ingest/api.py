"""HTTP handlers (thin: decode, call the service, encode) and error responses.

Every error body has one shape: ``{"detail": [{"field": ..., "reason": ...}]}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.ingest.auth import Unauthorized, require_scraper
from services.ingest.metrics import IngestMetrics
from services.ingest.schemas import (
    BatchIn,
    BatchItemResult,
    BatchResult,
    ErrorBody,
    FieldErrorOut,
    ItemIn,
    ItemResult,
)
from services.ingest.service import (
    BrokerUnavailable,
    IngestService,
    ItemRejected,
    StoreUnavailable,
)
from services.ingest.validation import FieldError, field_errors

log = structlog.get_logger(__name__)

MAX_IDEMPOTENCY_KEY_CHARS = 200


async def get_service(request: Request) -> IngestService:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, per request
    service: IngestService = request.app.state.ingest.service
    return service


ServiceDep = Annotated[IngestService, Depends(get_service)]
ClientDep = Annotated[str, Depends(require_scraper)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        max_length=MAX_IDEMPOTENCY_KEY_CHARS,
        description="Retries with the same key (per API key) get the same item id back.",
    ),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid API key."},
    413: {"model": ErrorBody, "description": "Body or batch too large."},
    422: {"model": ErrorBody, "description": "Invalid input: each field and reason."},
    503: {"model": ErrorBody, "description": "Broker or database unavailable; retry."},
}

router = APIRouter(prefix="/v1", tags=["items"])


@router.post(
    "/items",
    status_code=202,
    response_model=ItemResult,
    responses=_ERRORS,
    summary="Submit one item",
)
async def post_item(
    item: ItemIn,
    service: ServiceDep,
    client: ClientDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ItemResult:
    outcome = await service.submit(item, client=client, idempotency_key=idempotency_key or None)
    return ItemResult(id=outcome.item_id, status=outcome.status)


@router.post(
    "/items:batch",
    status_code=202,
    response_model=BatchResult,
    response_model_exclude_none=True,
    responses=_ERRORS,
    summary="Submit a batch of items; each is accepted or rejected on its own",
)
async def post_batch(
    batch: BatchIn,
    service: ServiceDep,
    client: ClientDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> BatchResult:
    outcomes = await service.submit_batch(
        batch.items, client=client, idempotency_key=idempotency_key or None
    )
    return BatchResult(
        items=[
            BatchItemResult(
                index=o.index,
                id=o.item_id,
                status=o.status,
                errors=_errors_out(o.errors) if o.status == "rejected" else None,
            )
            for o in outcomes
        ]
    )


def _errors_out(errors: Sequence[FieldError]) -> list[FieldErrorOut]:
    return [FieldErrorOut(field=e.field, reason=e.reason) for e in errors]


def _error_response(
    status_code: int, errors: Sequence[FieldError], headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(detail=_errors_out(errors))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers)


def install_error_handlers(app: FastAPI, *, retry_after_seconds: int) -> None:
    retry_after = {"Retry-After": str(retry_after_seconds)}

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc.errors())
        metrics: IngestMetrics = request.app.state.metrics
        # an invalid batch envelope is a rejected request, not a rejected item
        is_item = request.url.path == "/v1/items"
        metrics.count_rejections((e.category for e in errors), item=is_item)
        return _error_response(422, errors)

    async def rejected(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ItemRejected)
        return _error_response(exc.status_code, exc.errors)

    async def unauthorized(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Unauthorized)
        request.app.state.metrics.rejections.labels(reason="unauthorized").inc()
        error = FieldError("Authorization", exc.reason, "unauthorized")
        return _error_response(401, [error], headers={"WWW-Authenticate": "Bearer"})

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        what = "broker" if isinstance(exc, BrokerUnavailable) else "database"
        log.warning(f"{what}_unavailable", error=str(exc), path=request.url.path)
        reason = f"the {what} is unavailable ({exc}); retry after {retry_after_seconds} s"
        return _error_response(503, [FieldError(None, reason, what)], headers=retry_after)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            # FastAPI's answer to a body json.loads cannot even start on (not UTF-8, nested
            # too deep): invalid input like any other, so the same 422 as invalid JSON.
            error = FieldError("body", "invalid JSON: cannot parse the body", "invalid_json")
            request.app.state.metrics.count_rejections([error.category], item=False)
            return _error_response(422, [error])
        return _error_response(
            exc.status_code,
            [FieldError(None, str(exc.detail), "http")],
            headers=dict(exc.headers) if exc.headers else None,
        )

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ItemRejected, rejected)
    app.add_exception_handler(Unauthorized, unauthorized)
    app.add_exception_handler(BrokerUnavailable, unavailable)
    app.add_exception_handler(StoreUnavailable, unavailable)
    app.add_exception_handler(StarletteHTTPException, http_error)
