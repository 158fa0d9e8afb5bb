"""The reviewers' web UI: server-rendered pages over service.py, one item at a time.

Every page is a GET; every action is a form POST carrying the session's CSRF token and
answered with a redirect (post/redirect/get), so a reload never repeats an action. The
browser session is a signed cookie (session.py); the account it names is looked up again
on every request, so a deleted account or a changed role takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from services.review import auth, service
from services.review.accounts import AccountInfo, describe_accounts
from services.review.csrf import check_csrf, read_form
from services.review.database import ReviewDatabase
from services.review.schemas import Account, ClaimedItem, Progress, ReviewStats
from services.review.session import SessionCookie, WebSession
from services.review.settings import ReviewSettings
from services.review.tables import ReviewAccountRow
from services.review.throttle import LoginThrottle

router = APIRouter(include_in_schema=False)

# Templates and static files are package data, read through importlib.resources so an
# installed wheel serves them exactly as a source checkout does (pyproject package-data).
_PACKAGE = "services.review"
_STATIC = {"review.css": "text/css", "review.js": "text/javascript"}
#: the page a login returns to when none (or an unsafe one) was asked for
HOME = "/review"
#: how many of the model's guesses are highlighted as "top"
TOP_GUESSES = 2
# Pages load only their own CSS and JS: no inline script or style, no external origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

T = TypeVar("T")


@cache
def _templates() -> jinja2.Environment:
    # autoescape=True for every template: select_autoescape() would skip ".html.j2".
    return jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True)
class WebContext:
    """What the pages need from the running app."""

    settings: ReviewSettings
    database: ReviewDatabase
    cookie: SessionCookie
    throttle: LoginThrottle


def web_context(request: Request) -> WebContext:
    """The app's settings and database, and the session cookie built from them once."""
    found = getattr(request.app.state, "review_web", None)
    if isinstance(found, WebContext):
        return found
    settings: ReviewSettings = request.app.state.settings
    context = WebContext(
        settings=settings,
        database=request.app.state.review_db,
        cookie=SessionCookie.from_settings(settings),
        throttle=LoginThrottle(
            max_per_account=settings.review_login_max_failures,
            max_per_address=settings.review_login_max_failures_per_address,
            window=timedelta(seconds=settings.review_login_window_seconds),
        ),
    )
    request.app.state.review_web = context
    return context


Context = Annotated[WebContext, Depends(web_context)]


@dataclass(frozen=True)
class Choice:
    """One tag button: its approved tag, the model's probability, and whether it is a top guess."""

    tag: str
    probability: float
    top: bool
    suggested: bool = False


def tag_choices(approved: tuple[str, ...], item: ClaimedItem) -> list[Choice]:
    """The approved tags in their configured order, the model's top guesses marked.

    A tag is a top guess when it is among the ``TOP_GUESSES`` most probable and does not
    tie with one outside them (four tags at 10% are no guess at all). The tag end users
    suggested (a user_report item) is marked too: the reviewer decides, the page only shows.
    """
    p = {tag: _probability(item.probabilities.get(tag)) for tag in approved}

    def top(tag: str) -> bool:
        at_least = sum(1 for other in approved if p[other] >= p[tag])
        return p[tag] > 0 and at_least <= TOP_GUESSES

    return [Choice(tag, p[tag], top(tag), tag == item.suggested_tag) for tag in approved]


def _probability(value: float | None) -> float:
    if value is None or not math.isfinite(value):
        return 0.0
    return min(1.0, max(0.0, value))


def _now() -> datetime:
    return datetime.now(UTC)


async def _in_unit_of_work(context: WebContext, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one transaction, off the event loop (the database calls block)."""
    return await run_in_threadpool(context.database.run, work)


def _render(
    template: str,
    *,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    html = _templates().get_template(template).render(**values)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _redirect(f"/login?next={quote(target, safe='')}")


def _safe_next(value: str | None) -> str:
    """Only same-site paths: never ``//host`` or ``/\\host`` (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return HOME
    return value


async def _account(context: WebContext, web: WebSession | None) -> Account | None:
    if web is None or web.account is None:
        return None
    name, credential = web.account, web.credential
    return await _in_unit_of_work(context, lambda s: _lookup_account(s, name, credential))


def _credential(row: ReviewAccountRow) -> str:
    """What a session remembers of the password: a digest of its hash (never the hash)."""
    return hashlib.sha256((row.password_hash or "").encode()).hexdigest()[:32]


def _login(session: Session, name: str, password: str) -> tuple[Account, str] | None:
    account = auth.authenticate_password(session, name, password)
    if account is None:
        return None
    # after authenticate_password, which may have replaced a legacy hash
    return account, _credential(session.get_one(ReviewAccountRow, name))


def _lookup_account(session: Session, name: str, credential: str | None) -> Account | None:
    # Looked up on every request so that a removed or disabled account, a reset password
    # or a changed role counts at once.
    row = session.get(ReviewAccountRow, name)
    if row is None or row.disabled_at is not None:
        return None
    if credential is None or not hmac.compare_digest(credential, _credential(row)):
        return None
    return Account(name=row.name, role="admin" if row.role == "admin" else "reviewer")


# --- static -----------------------------------------------------------------------------


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    """The page's CSS and JS, served by the app itself (no CDN, works offline)."""
    if name not in _STATIC:
        raise HTTPException(status_code=404)
    static = resources.files(_PACKAGE) / "static" / name
    body = await run_in_threadpool(static.read_bytes)
    return Response(
        body,
        media_type=_STATIC[name],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


# --- login ------------------------------------------------------------------------------


@router.get("/")
async def home() -> RedirectResponse:
    return _redirect(HOME)


@router.get("/login")
async def login_page(request: Request, context: Context, next: str | None = None) -> Response:
    web = context.cookie.load(request) or WebSession()
    if await _account(context, web) is not None:
        return _redirect(_safe_next(next))
    response = _render(
        "login.html.j2",
        account=None,
        progress=None,
        flash=web.flash,
        error=None,
        name="",
        next=_safe_next(next),
        csrf_token=web.csrf_token,
    )
    context.cookie.save(response, web.without_flash())
    return response


@router.post("/login")
async def login(request: Request, context: Context) -> Response:
    web = context.cookie.load(request)
    form = await read_form(request)
    check_csrf(web, form)
    assert web is not None
    name, password = form.get("name", "").strip(), form.get("password", "")
    address = request.client.host if request.client else "unknown"
    now = _now()
    wait = context.throttle.retry_after(name, address, now)
    found: tuple[Account, str] | None = None
    if wait is None and name and password:
        found = await _in_unit_of_work(context, lambda s: _login(s, name, password))
        if found is None:
            context.throttle.failed(name, address, now)
        else:
            context.throttle.succeeded(name)
    if wait is not None or (name and password):
        result = "throttled" if wait is not None else "failed" if found is None else "ok"
        request.app.state.metrics.logins.labels(result=result).inc()
    if found is None:
        response = _render(
            "login.html.j2",
            status_code=401 if wait is None else 429,
            account=None,
            progress=None,
            flash=None,
            error="Unknown account or wrong password."
            if wait is None
            else f"Too many failed logins; try again in {wait} s.",
            # not echoed: a password typed into the name field would come back in the page
            name="",
            next=_safe_next(form.get("next")),
            csrf_token=web.csrf_token,
        )
        if wait is not None:
            response.headers["Retry-After"] = str(wait)
        context.cookie.save(response, web)
        return response
    account, credential = found
    redirect = _redirect(_safe_next(form.get("next")))
    context.cookie.save(redirect, web.logged_in(account.name, credential))
    return redirect


@router.post("/logout")
async def logout(request: Request, context: Context) -> Response:
    web = context.cookie.load(request)
    check_csrf(web, await read_form(request))
    response = _redirect("/login")
    context.cookie.clear(response)
    return response


# --- review -----------------------------------------------------------------------------


@router.get("/review")
async def review_page(request: Request, context: Context) -> Response:
    web = context.cookie.load(request)
    account = await _account(context, web)
    if web is None or account is None:
        return _login_redirect(request)
    now = _now()

    def claim(session: Session) -> tuple[ClaimedItem | None, Progress]:
        item = service.claim_next(session, account.name, now)
        return item, service.progress(session, account.name, now)

    item, progress = await _in_unit_of_work(context, claim)
    common: dict[str, Any] = {
        "account": account,
        "progress": progress,
        "flash": web.flash,
        "csrf_token": web.csrf_token,
    }
    if item is None:
        response = _render("empty.html.j2", **common)
    else:
        choices = tag_choices(context.settings.approved_tags, item)
        response = _render("review.html.j2", item=item, choices=choices, **common)
    if web.flash is not None:
        context.cookie.save(response, web.without_flash())
    return response


@dataclass(frozen=True)
class _Action:
    web: WebSession
    account: Account
    form: dict[str, str]


async def _form_action(request: Request, context: WebContext) -> _Action | Response:
    """The session, account and form of an action POST, or the redirect to log in.

    Without any session (expired or never logged in) nothing can be done, so the answer
    is the login page; with a session, the CSRF token must match (403 otherwise).
    """
    web = context.cookie.load(request)
    if web is None:
        return _redirect("/login")
    form = await read_form(request)
    check_csrf(web, form)
    account = await _account(context, web)
    if account is None:
        return _redirect("/login")
    return _Action(web, account, form)


def _done(context: WebContext, web: WebSession, kind: str, text: str) -> Response:
    response = _redirect(HOME)
    context.cookie.save(response, web.with_flash("ok" if kind == "ok" else "error", text))
    return response


@router.post("/review/label")
async def label(request: Request, context: Context) -> Response:
    action = await _form_action(request, context)
    if isinstance(action, Response):
        return action
    web, name, form = action.web, action.account.name, action.form
    item_id, tag = form.get("item_id", ""), form.get("tag", "")
    # The title only words the flash message; the label is keyed by item id.
    title = form.get("title") or item_id
    now = _now()
    try:
        await _in_unit_of_work(context, lambda s: service.label_item(s, name, item_id, tag, now))
    except service.NotHolder:
        return _done(
            context, web, "error", "Your claim on that item expired; here is the next one."
        )
    except service.UnknownTag:
        return _done(context, web, "error", f"“{tag}” is not an approved tag.")
    return _done(context, web, "ok", f"Labeled “{_short(title)}” as {tag} — press u to undo.")


@router.post("/review/skip")
async def skip(request: Request, context: Context) -> Response:
    action = await _form_action(request, context)
    if isinstance(action, Response):
        return action
    web, name, item_id = action.web, action.account.name, action.form.get("item_id", "")
    now = _now()
    try:
        await _in_unit_of_work(context, lambda s: service.skip_item(s, name, item_id, now))
    except service.NotHolder:
        return _done(
            context, web, "error", "Your claim on that item expired; here is the next one."
        )
    return _done(context, web, "ok", "Skipped.")


@router.post("/review/undo")
async def undo(request: Request, context: Context) -> Response:
    action = await _form_action(request, context)
    if isinstance(action, Response):
        return action
    web, name = action.web, action.account.name
    now = _now()
    try:
        item = await _in_unit_of_work(context, lambda s: service.undo_last(s, name, now))
    except service.NothingToUndo as error:
        return _done(context, web, "error", f"Nothing to undo: {error}.")
    return _done(context, web, "ok", f"Undid your label of “{_short(item.title)}”: label it again.")


def _short(title: str, limit: int = 80) -> str:
    return title if len(title) <= limit else title[: limit - 1] + "…"


# --- admin ------------------------------------------------------------------------------


@router.get("/admin")
async def admin_page(request: Request, context: Context) -> Response:
    web = context.cookie.load(request)
    account = await _account(context, web)
    if web is None or account is None:
        return _login_redirect(request)
    if account.role != "admin":
        return _render(
            "forbidden.html.j2",
            status_code=403,
            account=account,
            progress=None,
            flash=None,
            csrf_token=web.csrf_token,
        )
    now = _now()

    def load(session: Session) -> tuple[ReviewStats, list[AccountInfo]]:
        return service.review_stats(session, now), describe_accounts(session)

    stats, accounts = await _in_unit_of_work(context, load)
    response = _render(
        "admin.html.j2",
        account=account,
        progress=None,
        flash=web.flash,
        csrf_token=web.csrf_token,
        stats=stats,
        oldest_age=_age(stats.oldest_pending_age_seconds),
        agreement=("—" if stats.agreement is None else f"{stats.agreement:.0%}"),
        agreement_pairs=stats.doubly_labeled_items,
        reviewers=sorted(stats.labels_per_reviewer.items(), key=lambda kv: (-kv[1], kv[0])),
        accounts=accounts,
    )
    if web.flash is not None:
        context.cookie.save(response, web.without_flash())
    return response


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "— (queue empty)"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
