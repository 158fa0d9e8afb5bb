"""HTTP handlers of the rollout controller (thin): status, start, pause, resume, abort.

Every call needs an admin key (``TAGSTREAM_ROLLOUT_ADMIN_KEYS``) as ``Bearer``; a review
account's token (admin or reviewer) is answered 403, any other unknown key 401. Errors
are answered in the one envelope of ``shared.http.errors``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError

from services.rollout.repository import Rollout
from services.rollout.service import RolloutController, RolloutError
from shared.http import errors as shared_errors
from shared.http.errors import (
    FieldError,
    Refusal,
    error_responses,
    unavailable_without_detail,
)
from shared.security import bearer_client

_admin_key = bearer_client(
    scheme_name="RolloutAdminKey",
    variable="TAGSTREAM_ROLLOUT_ADMIN_KEYS",
    description="A key from TAGSTREAM_ROLLOUT_ADMIN_KEYS, as `Bearer <key>`.",
    api="the rollout API",
)
Admin = Annotated[str, Depends(_admin_key)]
router = APIRouter(prefix="/v1")


_NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A version id is a registry folder name; a reason is free text but never holds control
    # characters (PostgreSQL refuses NUL in text, which was a 500).
    version: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="A registered candidate.",
    )
    reason: str = Field("started by an operator", max_length=500, pattern=_NO_CONTROL)


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=500, pattern=_NO_CONTROL)


def controller(request: Request) -> RolloutController:
    found: RolloutController = request.app.state.controller
    return found


Controller = Annotated[RolloutController, Depends(controller)]


_S403 = "A review account's token (`tsr_…`): the rollout API needs an admin key."
_MUTATION_ERRORS = error_responses(
    401,
    403,
    404,
    409,
    422,
    503,
    s404="No rollout in progress, or no such model version.",
    s403=_S403,
    s409="Refused by the rollout's state or the version's status; the reason says which.",
)


@router.get(
    "/rollouts",
    summary="Recent rollouts with their analyses, and the controller's settings",
    responses=error_responses(401, 403, 503, s403=_S403),
)
async def get_rollouts(_: Admin, rollouts: Controller) -> dict[str, Any]:
    """Every recent rollout, newest first, with its analyses."""
    s = rollouts.settings
    return {
        "prometheus": {"configured": rollouts.prometheus_configured, "url": s.prometheus_url},
        "steps": list(s.step_labels),
        "interval_seconds": s.rollout_interval_seconds,
        "failure_limit": s.rollout_failure_limit,
        "inconclusive_limit": s.rollout_inconclusive_limit,
        "require_labels": s.rollout_require_labels,
        "rollouts": [r.model_dump(mode="json") for r in await rollouts.status()],
    }


@router.post(
    "/rollouts",
    status_code=201,
    summary="Start rolling out a candidate version",
    responses=_MUTATION_ERRORS,
)
async def start_rollout(body: StartIn, _: Admin, rollouts: Controller) -> Rollout:
    return await rollouts.start(body.version, body.reason)


@router.post("/rollouts/pause", summary="Pause the rollout in progress", responses=_MUTATION_ERRORS)
async def pause_rollout(_: Admin, rollouts: Controller, body: ReasonIn | None = None) -> Rollout:
    return await rollouts.pause(_reason(body, "paused by an operator"))


@router.post("/rollouts/resume", summary="Resume the paused rollout", responses=_MUTATION_ERRORS)
async def resume_rollout(_: Admin, rollouts: Controller, body: ReasonIn | None = None) -> Rollout:
    return await rollouts.resume(_reason(body, "resumed by an operator"))


@router.post(
    "/rollouts/abort",
    summary="Abort the rollout in progress: all traffic back to stable",
    responses=_MUTATION_ERRORS,
)
async def abort_rollout(_: Admin, rollouts: Controller, body: ReasonIn | None = None) -> Rollout:
    return await rollouts.abort(_reason(body, "aborted by an operator"))


def _reason(body: ReasonIn | None, default: str) -> str:
    return body.reason if body is not None and body.reason else default


def _refused(exc: Exception) -> Refusal:
    assert isinstance(exc, RolloutError)
    return Refusal(exc.status_code, [FieldError(None, exc.reason)])


def install_error_handlers(app: FastAPI) -> None:
    """The shared envelope, plus the controller's refusals (404, 409 with their reason) and
    503 when the database cannot be reached."""
    shared_errors.install_error_handlers(
        app,
        refusals={
            RolloutError: _refused,
            OperationalError: unavailable_without_detail("database"),
        },
    )
