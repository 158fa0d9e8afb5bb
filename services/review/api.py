"""The review JSON API: claim, label, skip, undo (reviewers) and stats (admins).

Every error body has one shape: ``{"detail": [{"field": ..., "reason": ...}]}``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.review import service
from services.review.auth import AdminOnly, CurrentReviewer, Forbidden, Unauthorized
from services.review.database import run_db
from services.review.schemas import ClaimedItem, LabelIn, LabelOut, ReviewStats, SkipOut
from services.review.service import NothingToUndo, NotHolder, UnknownTag

router = APIRouter(prefix="/v1/review", tags=["review"])


def _now() -> datetime:
    return datetime.now(UTC)


@router.post(
    "/claim",
    response_model=ClaimedItem,
    responses={204: {"description": "Nothing to claim."}},
)
async def claim(request: Request, account: CurrentReviewer) -> ClaimedItem | Response:
    """The item the caller holds, or the next one by priority; 204 when none is left."""
    item = await run_db(request.app, service.claim_next, account.name, _now())
    return Response(status_code=204) if item is None else item


@router.post("/items/{item_id}/label", response_model=LabelOut)
async def label(
    request: Request, item_id: str, body: LabelIn, account: CurrentReviewer
) -> LabelOut:
    """Label the held item; 409 without the claim, 422 for a tag outside the approved list."""
    stored = await run_db(request.app, service.label_item, account.name, item_id, body.tag, _now())
    return LabelOut(label_id=stored.label_id, item_id=stored.item_id, tag=stored.tag)


@router.post("/items/{item_id}/skip", response_model=SkipOut)
async def skip(request: Request, item_id: str, account: CurrentReviewer) -> SkipOut:
    """Release the held item; it is offered to the caller again only when nothing else is."""
    await run_db(request.app, service.skip_item, account.name, item_id, _now())
    return SkipOut(item_id=item_id)


@router.post("/undo", response_model=ClaimedItem)
async def undo(request: Request, account: CurrentReviewer) -> ClaimedItem:
    """Undo the caller's last label within the window; the item is the caller's again."""
    return await run_db(request.app, service.undo_last, account.name, _now())


@router.get("/stats", response_model=ReviewStats)
async def stats(request: Request, account: AdminOnly) -> ReviewStats:
    """Queue depth and age, labels per reviewer, agreement (admins only)."""
    return await run_db(request.app, service.review_stats, _now())


def error(status_code: int, field: str | None, reason: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"detail": [{"field": field, "reason": reason}]}, status_code=status_code, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Exception) -> JSONResponse:
        return error(401, "authorization", str(exc), **{"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Exception) -> JSONResponse:
        return error(403, "authorization", str(exc))

    @app.exception_handler(NotHolder)
    async def not_holder(request: Request, exc: Exception) -> JSONResponse:
        return error(409, "item_id", str(exc))

    @app.exception_handler(NothingToUndo)
    async def nothing_to_undo(request: Request, exc: Exception) -> JSONResponse:
        return error(409, None, str(exc))

    @app.exception_handler(UnknownTag)
    async def unknown_tag(request: Request, exc: Exception) -> JSONResponse:
        return error(422, "tag", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p not in ("body", "path", "query"))
                or None,
                "reason": e["msg"],
            }
            for e in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return error(exc.status_code, None, str(exc.detail), **(exc.headers or {}))
