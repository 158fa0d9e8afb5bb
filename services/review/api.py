"""The review JSON API: claim, label, skip, undo (reviewers) and stats (admins).

Errors are answered in the one envelope of ``shared.http.errors``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy.exc import OperationalError

from services.review import service
from services.review.auth import AdminOnly, CurrentReviewer, Forbidden
from services.review.database import run_db
from services.review.schemas import ClaimedItem, LabelIn, LabelOut, ReviewStats, SkipOut
from services.review.service import NothingToUndo, NotHolder, UnknownTag
from shared.http import errors as shared_errors
from shared.http.errors import (
    FieldError,
    Refusal,
    error_responses,
    unavailable_without_detail,
)

router = APIRouter(prefix="/v1/review", tags=["review"])
RETRY_AFTER_SECONDS = 1


def _now() -> datetime:
    return datetime.now(UTC)


@router.post(
    "/claim",
    response_model=ClaimedItem,
    summary="Claim the next item to label (or the one already held)",
    responses={204: {"description": "Nothing to claim."}, **error_responses(401, 503)},
)
async def claim(request: Request, account: CurrentReviewer) -> ClaimedItem | Response:
    """The item the caller holds, or the next one by priority; 204 when none is left."""
    item = await run_db(request.app, service.claim_next, account.name, _now())
    return Response(status_code=204) if item is None else item


@router.post(
    "/items/{item_id}/label",
    response_model=LabelOut,
    summary="Label the item the caller holds",
    responses=error_responses(
        401,
        409,
        422,
        503,
        s409="The caller does not hold this item (never claimed, lease lapsed, another's).",
        s422="A tag outside the approved list, or an invalid body (unknown fields too).",
    ),
)
async def label(
    request: Request, item_id: str, body: LabelIn, account: CurrentReviewer
) -> LabelOut:
    """Label the held item; 409 without the claim, 422 for a tag outside the approved list."""
    stored = await run_db(request.app, service.label_item, account.name, item_id, body.tag, _now())
    return LabelOut(label_id=stored.label_id, item_id=stored.item_id, tag=stored.tag)


@router.post(
    "/items/{item_id}/skip",
    response_model=SkipOut,
    summary="Pass on the item the caller holds",
    responses=error_responses(
        401,
        409,
        422,
        503,
        s409="The caller does not hold this item (never claimed, lease lapsed, another's).",
    ),
)
async def skip(request: Request, item_id: str, account: CurrentReviewer) -> SkipOut:
    """Release the held item; it is offered to the caller again only when nothing else is."""
    await run_db(request.app, service.skip_item, account.name, item_id, _now())
    return SkipOut(item_id=item_id)


@router.post(
    "/undo",
    response_model=ClaimedItem,
    summary="Undo the caller's last label",
    responses=error_responses(
        401, 409, 503, s409="No label of the caller's to undo within the window."
    ),
)
async def undo(request: Request, account: CurrentReviewer) -> ClaimedItem:
    """Undo the caller's last label within the window; the item is the caller's again."""
    return await run_db(request.app, service.undo_last, account.name, _now())


@router.get(
    "/stats",
    response_model=ReviewStats,
    summary="Queue and reviewer statistics (admins only)",
    responses=error_responses(401, 403, 503, s403="Reviewers may not read the stats."),
)
async def stats(request: Request, account: AdminOnly) -> ReviewStats:
    """Queue depth and age, labels per reviewer, agreement (admins only)."""
    return await run_db(request.app, service.review_stats, _now())


def _refusal(status_code: int, field: str | None) -> Callable[[Exception], Refusal]:
    def refuse(exc: Exception) -> Refusal:
        return Refusal(status_code, [FieldError(field, str(exc))])

    return refuse


def install_error_handlers(app: FastAPI) -> None:
    """The shared envelope, plus the review refusals (403 by role, 409 by state, 422 tag,
    503 when the database cannot be reached)."""
    shared_errors.install_error_handlers(
        app,
        refusals={
            OperationalError: unavailable_without_detail("database", RETRY_AFTER_SECONDS),
            Forbidden: _refusal(403, shared_errors.AUTHORIZATION),
            NotHolder: _refusal(409, "item_id"),
            NothingToUndo: _refusal(409, None),
            UnknownTag: _refusal(422, "tag"),
        },
    )
