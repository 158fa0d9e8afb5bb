"""The admin page's account actions: disable, enable, remove, reset a password, rotate or
revoke an API token. Same rules as the other pages (web.py): form POSTs with the session's
CSRF token, admins only (403 for a reviewer), post/redirect/get, except a rotated token,
which is shown once on the answer itself so that it never rests in a cookie.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from services.review import accounts
from services.review.web import (
    Context,
    WebContext,
    _Action,
    _form_action,
    _in_unit_of_work,
    _now,
    _redirect,
    _render,
)

router = APIRouter(include_in_schema=False)
ADMIN = "/admin"


async def _admin_action(request: Request, context: WebContext) -> _Action | Response:
    action = await _form_action(request, context)
    if isinstance(action, Response):
        return action
    if action.account.role != "admin":
        return _render(
            "forbidden.html.j2",
            status_code=403,
            account=action.account,
            progress=None,
            flash=None,
            csrf_token=action.web.csrf_token,
        )
    return action


async def _account_action(
    request: Request,
    context: WebContext,
    name: str,
    work: Callable[[Session], object],
    done: str,
    *,
    not_on_self: bool = False,
) -> Response:
    action = await _admin_action(request, context)
    if isinstance(action, Response):
        return action
    if not_on_self and name == action.account.name:
        return _back(context, action, "error", "You cannot do that to your own account.")
    try:
        await _in_unit_of_work(context, work)
    except accounts.UnknownAccount as error:
        return _back(context, action, "error", f"{error}.")
    except accounts.WeakPassword as error:
        return _back(context, action, "error", f"{error}.")
    return _back(context, action, "ok", done)


def _back(context: WebContext, action: _Action, kind: str, text: str) -> Response:
    response = _redirect(ADMIN)
    context.cookie.save(response, action.web.with_flash("ok" if kind == "ok" else "error", text))
    return response


@router.post("/admin/accounts/{name}/disable")
async def disable(request: Request, context: Context, name: str) -> Response:
    now = _now()
    return await _account_action(
        request,
        context,
        name,
        lambda s: accounts.disable_account(s, name, now),
        f"Disabled {name}: neither its token nor its password works now.",
        not_on_self=True,
    )


@router.post("/admin/accounts/{name}/enable")
async def enable(request: Request, context: Context, name: str) -> Response:
    return await _account_action(
        request, context, name, lambda s: accounts.enable_account(s, name), f"Enabled {name}."
    )


@router.post("/admin/accounts/{name}/remove")
async def remove(request: Request, context: Context, name: str) -> Response:
    return await _account_action(
        request,
        context,
        name,
        lambda s: accounts.remove_account(s, name),
        f"Removed {name}; its labels stay.",
        not_on_self=True,
    )


@router.post("/admin/accounts/{name}/password")
async def reset_password(request: Request, context: Context, name: str) -> Response:
    action = await _admin_action(request, context)
    if isinstance(action, Response):
        return action
    password = action.form.get("password", "")
    try:
        await _in_unit_of_work(context, lambda s: accounts.reset_password(s, name, password))
    except (accounts.UnknownAccount, accounts.WeakPassword) as error:
        return _back(context, action, "error", f"{error}.")
    return _back(context, action, "ok", f"New password set for {name}.")


@router.post("/admin/accounts/{name}/token/revoke")
async def revoke_token(request: Request, context: Context, name: str) -> Response:
    now = _now()
    return await _account_action(
        request,
        context,
        name,
        lambda s: accounts.revoke_token(s, name, now),
        f"Revoked the API token of {name}; rotate to issue a new one.",
    )


@router.post("/admin/accounts/{name}/token/rotate")
async def rotate_token(request: Request, context: Context, name: str) -> Response:
    action = await _admin_action(request, context)
    if isinstance(action, Response):
        return action
    now = _now()
    try:
        token = await _in_unit_of_work(context, lambda s: accounts.rotate_token(s, name, now))
    except accounts.UnknownAccount as error:
        return _back(context, action, "error", f"{error}.")
    return _render(
        "token.html.j2",
        account=action.account,
        progress=None,
        flash=None,
        csrf_token=action.web.csrf_token,
        name=name,
        token=token,
    )
