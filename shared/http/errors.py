"""The one error envelope of every tagstream HTTP API, and its one field-path rule.

Every error body has one shape::

    {"detail": [{"field": <path or null>, "reason": <readable text>}, ...]}

``field`` names what the client got wrong, by one rule in every service:

- a body field: its dotted path inside the body (``title``, ``items.3.title``); the body as
  a whole (not JSON, not an object): ``body``;
- a header: its canonical HTTP name (``Authorization``, ``Idempotency-Key``), so a missing
  or wrong credential is always ``Authorization``, whichever service answers;
- a path or query parameter: its name (``item_id``);
- nothing the client sent (404, 409 on state, 503): ``null``.

A 503 always carries ``Retry-After``. Client-chosen names (unknown fields) are echoed
back made safe: valid UTF-8 and at most 200 characters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.ratelimit import RateLimited
from shared.security import Forbidden, Unauthorized

log = structlog.get_logger(__name__)

AUTHORIZATION = "Authorization"
#: FastAPI's 400 for a body that ``json.loads`` cannot even start on (not UTF-8, too deep).
_UNPARSABLE_BODY = "There was an error parsing the body"
_MAX_FIELD_NAME_CHARS = 200
_LOCATIONS = ("body", "query", "path", "cookie")


@dataclass(frozen=True)
class FieldError:
    """Why one thing was refused: ``field`` (see the module's rule), a readable ``reason``
    and a short ``category`` for metrics (a small fixed set of values)."""

    field: str | None
    reason: str
    category: str = "invalid_value"


@dataclass(frozen=True)
class Refusal:
    """An error answer: status, the field errors of its body and extra headers."""

    status_code: int
    errors: Sequence[FieldError]
    headers: Mapping[str, str] = field(default_factory=dict)


class FieldErrorOut(BaseModel):
    field: str | None = Field(description="Path of the field at fault, if one is.")
    reason: str = Field(description="What is wrong with it.")


class ErrorBody(BaseModel):
    """The body of every error answer (for ``responses=`` in OpenAPI)."""

    detail: list[FieldErrorOut]


#: What each error status means in every service, for ``error_responses``.
STATUS_MEANINGS: Mapping[int, str] = {
    401: "Missing, wrong, expired or revoked credential (field `Authorization`).",
    403: "Authenticated, but this role may not do this.",
    404: "Nothing of that name.",
    409: "Refused by the current state; the reason says which.",
    413: "Body or batch too large.",
    422: "Invalid input: each field and reason.",
    429: "Too many requests; retry after `Retry-After` seconds.",
    503: "A dependency is unavailable; retry after `Retry-After` seconds.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {"description": "Always `Bearer`.", "schema": {"type": "string"}}
}


def error_responses(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the error statuses a route can answer, each with the one
    envelope (``ErrorBody``) and its headers (``Retry-After``, ``WWW-Authenticate``).

    ``described`` overrides a meaning for this route: ``s409="Not your claim."``.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "model": ErrorBody,
            "description": described.get(f"s{status}", STATUS_MEANINGS[status]),
        }
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        elif status == 401:
            entry["headers"] = _WWW_AUTHENTICATE
        responses[status] = entry
    return responses


def canonical_header(name: str) -> str:
    """``idempotency-key`` -> ``Idempotency-Key``: headers as HTTP documents spell them."""
    return "-".join(part.capitalize() for part in name.split("-"))


def field_path(loc: Sequence[Any], *, whole: str = "body", located: bool = True) -> str:
    """The field path of a pydantic/FastAPI error location, by the module's rule.

    ``located``: the first element says where (``body``, ``header``, ``query``...), as in
    FastAPI's request errors; False for a model validated on its own, whose paths are
    inside ``whole``.
    """
    parts = [str(part) for part in loc]
    if located and parts:
        where, parts = parts[0], parts[1:]
        if where == "header" and parts:
            return _safe(canonical_header(parts[0]))
        if where not in _LOCATIONS:
            parts = [where, *parts]
    return _safe(".".join(parts)) if parts else whole


def validation_errors(
    errors: Sequence[Mapping[str, Any]], *, whole: str = "body", located: bool = True
) -> list[FieldError]:
    """Pydantic/FastAPI validation errors as field errors (paths by ``field_path``)."""
    result = []
    for error in errors:
        path = field_path(error.get("loc", ()), whole=whole, located=located)
        kind = error.get("type", "")
        if kind == "json_invalid":
            detail = (error.get("ctx") or {}).get("error", "malformed")
            result.append(FieldError("body", f"invalid JSON: {detail}", "invalid_json"))
        elif kind == "extra_forbidden":
            result.append(FieldError(path, "unknown field", "unknown_field"))
        elif kind == "missing":
            result.append(FieldError(path, "field required", "missing_field"))
        else:
            result.append(FieldError(path, str(error.get("msg", kind)), "invalid_value"))
    return result


def _safe(name: str) -> str:
    """A client-chosen name made safe to echo: valid UTF-8 and bounded in length."""
    name = name.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(name) > _MAX_FIELD_NAME_CHARS:
        return name[:_MAX_FIELD_NAME_CHARS] + "…"
    return name


def error_response(refusal: Refusal) -> JSONResponse:
    body = ErrorBody(detail=[FieldErrorOut(field=e.field, reason=e.reason) for e in refusal.errors])
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=refusal.status_code,
        headers=dict(refusal.headers) or None,
    )


Refuse = Callable[[Exception], Refusal]
#: Sees every refusal before it is sent (a service counts its rejections here).
Observer = Callable[[Request, Exception, Refusal], None]


def unavailable_without_detail(what: str, retry_after_seconds: int = 1) -> Refuse:
    """A 503 refusal naming only ``what``: for exceptions whose text can quote SQL, its
    parameters or addresses (a database driver's), which the log keeps and a body must not."""

    def refuse(exc: Exception) -> Refusal:
        reason = f"the {what} is unavailable; retry after {retry_after_seconds} s"
        return Refusal(
            503, [FieldError(None, reason, what)], {"Retry-After": str(retry_after_seconds)}
        )

    return refuse


def install_error_handlers(
    app: FastAPI,
    *,
    refusals: Mapping[type[Exception], Refuse] | None = None,
    unavailable: Mapping[type[Exception], str] | None = None,
    retry_after_seconds: int = 1,
    observe: Observer | None = None,
) -> None:
    """Answer every error of ``app`` in the one envelope.

    Built in: invalid requests (422), ``shared.security.Unauthorized`` (401 with
    ``WWW-Authenticate: Bearer``), ``shared.security.Forbidden`` (403),
    ``shared.ratelimit.RateLimited`` (429 with ``Retry-After``), HTTP errors (their
    status; FastAPI's 400 for an unparsable body becomes the same 422 as invalid JSON).
    ``refusals`` maps a service's own exceptions to their answer; ``unavailable`` maps
    exceptions meaning a dependency is down to its name (``"broker"``), answered 503 with
    ``Retry-After``.
    """

    def unavailable_refusal(what: str) -> Refuse:
        def refuse(exc: Exception) -> Refusal:
            reason = f"the {what} is unavailable ({exc}); retry after {retry_after_seconds} s"
            return Refusal(
                503, [FieldError(None, reason, what)], {"Retry-After": str(retry_after_seconds)}
            )

        return refuse

    handled: dict[type[Exception], Refuse] = {
        RequestValidationError: _invalid_request,
        Unauthorized: _unauthorized,
        Forbidden: _forbidden,
        RateLimited: _rate_limited,
        StarletteHTTPException: _http_error,
    }
    handled.update({kind: unavailable_refusal(what) for kind, what in (unavailable or {}).items()})
    handled.update(refusals or {})

    def handler_for(refuse: Refuse) -> Callable[[Request, Exception], Any]:
        async def handle(request: Request, exc: Exception) -> JSONResponse:
            refusal = refuse(exc)
            if refusal.status_code == 503:
                log.warning(
                    f"{refusal.errors[0].category}_unavailable",
                    error=str(exc),
                    path=request.url.path,
                )
            if observe is not None:
                observe(request, exc, refusal)
            return error_response(refusal)

        return handle

    for kind, refuse in handled.items():
        app.add_exception_handler(kind, handler_for(refuse))


def _invalid_request(exc: Exception) -> Refusal:
    assert isinstance(exc, RequestValidationError)
    return Refusal(422, validation_errors(exc.errors()))


def _unauthorized(exc: Exception) -> Refusal:
    assert isinstance(exc, Unauthorized)
    error = FieldError(AUTHORIZATION, exc.reason, "unauthorized")
    return Refusal(401, [error], {"WWW-Authenticate": "Bearer"})


def _forbidden(exc: Exception) -> Refusal:
    assert isinstance(exc, Forbidden)
    return Refusal(403, [FieldError(AUTHORIZATION, exc.reason, "forbidden")])


def _rate_limited(exc: Exception) -> Refusal:
    assert isinstance(exc, RateLimited)
    retry = {"Retry-After": str(exc.retry_after_seconds)}
    return Refusal(429, [FieldError(None, exc.reason, "rate_limited")], retry)


def _http_error(exc: Exception) -> Refusal:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        # invalid input like any other, so the same 422 as invalid JSON
        error = FieldError("body", "invalid JSON: cannot parse the body", "invalid_json")
        return Refusal(422, [error])
    return Refusal(exc.status_code, [FieldError(None, str(exc.detail), "http")], exc.headers or {})
