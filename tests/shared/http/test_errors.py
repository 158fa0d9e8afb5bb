"""The one error envelope and its one field-path rule (shared.http.errors)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Header, HTTPException

from shared.http.errors import (
    FieldError,
    Refusal,
    field_path,
    install_error_handlers,
    validation_errors,
)
from shared.security import Unauthorized


class Busy(Exception):
    pass


class Broken(Exception):
    pass


def test_request_errors_drop_the_body_prefix_and_are_safe_to_echo() -> None:
    # moved from tests/services/ingest/test_validation.py with the rule it pins
    errors = validation_errors(
        [
            {"type": "missing", "loc": ("body", "items", 3, "title"), "msg": "Field required"},
            {"type": "extra_forbidden", "loc": ("body", "\ud800" + "k" * 500), "msg": "x"},
            {"type": "json_invalid", "loc": ("body", 7), "msg": "x", "ctx": {"error": "boom"}},
            {"type": "string_too_long", "loc": ("header", "idempotency-key"), "msg": "long"},
        ]
    )
    assert errors[0] == FieldError("items.3.title", "field required", "missing_field")
    assert errors[1].field is not None
    assert errors[1].field.startswith("\\ud800")
    assert len(errors[1].field) <= 201
    assert errors[2] == FieldError("body", "invalid JSON: boom", "invalid_json")
    # headers by their canonical HTTP name (was "header.idempotency-key" in ingest)
    assert errors[3] == FieldError("Idempotency-Key", "long", "invalid_value")


def test_the_field_path_rule() -> None:
    assert field_path(("body",)) == "body"
    assert field_path(("body", "items", 0, "title")) == "items.0.title"
    assert field_path(("header", "authorization")) == "Authorization"
    assert field_path(("header", "x-request-id")) == "X-Request-Id"
    assert field_path(("path", "item_id")) == "item_id"
    assert field_path(("query", "limit")) == "limit"
    # a model validated on its own: paths are inside the whole it stands for
    assert field_path((), whole="item", located=False) == "item"
    assert field_path(("header",), whole="item", located=False) == "header"


def _app(seen: list[int]) -> FastAPI:
    app = FastAPI()

    @app.post("/things/{thing_id}")
    async def post_thing(thing_id: int, body: dict[str, int], x_tag: str = Header()) -> None:
        return None

    @app.get("/locked")
    async def locked() -> None:
        raise Unauthorized("invalid API key")

    @app.get("/busy")
    async def busy() -> None:
        raise Busy

    @app.get("/broken")
    async def broken() -> None:
        raise Broken("no connection")

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, "short and stout", headers={"X-Why": "tea"})

    install_error_handlers(
        app,
        refusals={Busy: lambda exc: Refusal(409, [FieldError(None, "busy")])},
        unavailable={Broken: "database"},
        retry_after_seconds=7,
        observe=lambda request, exc, refusal: seen.append(refusal.status_code),
    )
    return app


async def test_every_error_has_the_one_envelope() -> None:
    seen: list[int] = []
    transport = httpx.ASGITransport(app=_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        invalid = await client.post("/things/x", json={"a": "b"})
        unauthorized = await client.get("/locked")
        busy = await client.get("/busy")
        broken = await client.get("/broken")
        teapot = await client.get("/teapot")
        missing = await client.get("/nowhere")
        unparsable = await client.post(
            "/things/1",
            content=b"[" * 5000,
            headers={"Content-Type": "application/json", "X-Tag": "t"},
        )

    assert invalid.status_code == 422
    assert {e["field"] for e in invalid.json()["detail"]} == {"thing_id", "a", "X-Tag"}
    assert unauthorized.status_code == 401
    assert unauthorized.headers["WWW-Authenticate"] == "Bearer"
    assert unauthorized.json() == {
        "detail": [{"field": "Authorization", "reason": "invalid API key"}]
    }
    assert (busy.status_code, busy.json()) == (409, {"detail": [{"field": None, "reason": "busy"}]})
    assert broken.status_code == 503
    assert broken.headers["Retry-After"] == "7"
    assert "database is unavailable (no connection)" in broken.json()["detail"][0]["reason"]
    assert teapot.status_code == 418
    assert teapot.headers["X-Why"] == "tea"
    assert teapot.json() == {"detail": [{"field": None, "reason": "short and stout"}]}
    assert (missing.status_code, missing.json()["detail"][0]["field"]) == (404, None)
    assert unparsable.status_code == 422
    assert unparsable.json()["detail"][0]["field"] == "body"
    assert seen == [422, 401, 409, 503, 418, 404, 422]
