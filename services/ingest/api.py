"""HTTP handlers (thin: decode, call the service, encode) and error responses.

Errors are answered in the one envelope of ``shared.http.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.ingest.auth import require_scraper
from services.ingest.metrics import IngestMetrics
from services.ingest.schemas import (
    BatchIn,
    BatchItemResult,
    BatchResult,
    ItemIn,
    ItemResult,
)
from services.ingest.service import (
    BrokerUnavailable,
    IngestService,
    ItemRejected,
    Overloaded,
    StoreUnavailable,
)
from shared.http import errors as shared_errors
from shared.http.errors import FieldError, FieldErrorOut, Refusal, error_responses
from shared.security import Forbidden, Unauthorized

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

_ERRORS = error_responses(
    401,
    403,
    413,
    422,
    429,
    503,
    s401="Missing or invalid API key.",
    s403="A reviewer's token (`tsr_…`): items need a key from TAGSTREAM_INGEST_API_KEYS.",
    s429="This API key sent more items per second than its rate limit (a batch costs one "
    "per item); retry after Retry-After seconds.",
    s503="Broker or database unavailable, or too many items in flight (overloaded); retry "
    "after Retry-After seconds.",
)

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


def _count_rejection(request: Request, exc: Exception, refusal: Refusal) -> None:
    metrics: IngestMetrics = request.app.state.metrics
    if isinstance(exc, Unauthorized):
        metrics.rejections.labels(reason="unauthorized").inc()
    elif isinstance(exc, Forbidden):
        metrics.rejections.labels(reason="forbidden").inc()
    elif isinstance(exc, RequestValidationError):
        # an invalid batch envelope is a rejected request, not a rejected item
        is_item = request.url.path == "/v1/items"
        metrics.count_rejections((e.category for e in refusal.errors), item=is_item)
    elif isinstance(exc, StarletteHTTPException) and refusal.status_code == 422:
        metrics.count_rejections((e.category for e in refusal.errors), item=False)


def _rejected(exc: Exception) -> Refusal:
    assert isinstance(exc, ItemRejected)
    return Refusal(exc.status_code, exc.errors)


def _overloaded(exc: Exception) -> Refusal:
    assert isinstance(exc, Overloaded)
    retry = {"Retry-After": str(exc.retry_after_seconds)}
    return Refusal(503, [FieldError(None, str(exc), "overloaded")], retry)


def install_error_handlers(app: FastAPI, *, retry_after_seconds: int) -> None:
    """The shared envelope (which answers the rate limit's 429); ingest adds item
    rejections and overload, and counts every rejection."""
    shared_errors.install_error_handlers(
        app,
        refusals={ItemRejected: _rejected, Overloaded: _overloaded},
        unavailable={BrokerUnavailable: "broker", StoreUnavailable: "database"},
        retry_after_seconds=retry_after_seconds,
        observe=_count_rejection,
    )
