"""The reviewers' web UI over ASGI: login, session cookie, CSRF, the label/skip/undo forms
(post/redirect/get) and the admin page's role check."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.review.app import create_app
from services.review.auth import create_account
from services.review.service import store_request
from services.review.settings import ReviewSettings
from services.review.web import _safe_next
from tests.fixtures.db import migrated
from tests.services.review.conftest import request

NOW = datetime.now(UTC)
PASSWORD = "correct horse battery"
TAGS = ("natural-language-processing", "computer-vision", "mlops", "other")


@dataclass
class Web:
    app: FastAPI
    http: httpx.AsyncClient

    async def login(self, name: str, password: str = PASSWORD) -> httpx.Response:
        page = await self.http.get("/login")
        return await self.http.post(
            "/login",
            data={"csrf_token": csrf(page), "name": name, "password": password, "next": ""},
        )

    async def labeled_tags(self) -> list[tuple[str, str]]:
        from services.review.tables import ReviewLabelRow

        with self.app.state.review_db.sessions.begin() as session:
            rows = session.query(ReviewLabelRow).filter(ReviewLabelRow.undone_at.is_(None))
            return sorted((r.item_id, r.tag) for r in rows)


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    settings = ReviewSettings(
        environment="test",
        database_url=migrated(f"sqlite:///{tmp_path / 'review.db'}"),
        approved_tags=TAGS,
    )
    app = create_app(settings, metrics_registry=CollectorRegistry(), run_kafka=False)
    async with app.router.lifespan_context(app):
        with app.state.review_db.sessions.begin() as session:
            create_account(session, "ann", "reviewer", NOW, password=PASSWORD)
            create_account(session, "root", "admin", NOW, password=PASSWORD)
            first = request(
                "a",
                0.2,
                received_at=NOW,
                requested_at=NOW,
                title="<script>alert(1)</script> Tiny ViT",
                probabilities={"computer-vision": 0.55, "mlops": 0.3, "other": 0.15},
            )
            store_request(session, first, NOW)
            store_request(session, request("b", 0.4, received_at=NOW, requested_at=NOW), NOW)
        # https: the session cookie is Secure outside development.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://review") as http:
            yield Web(app, http)


async def test_pages_redirect_to_login_without_a_session(web: Web) -> None:
    for path in ("/review", "/admin"):
        response = await web.http.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    assert (await web.http.get("/")).headers["location"] == "/review"


async def test_login_page_sets_a_hardened_cookie(web: Web) -> None:
    page = await web.http.get("/login")
    assert page.status_code == 200
    cookie = page.headers["set-cookie"].lower()
    for flag in ("httponly", "samesite=lax", "secure", "max-age=28800"):
        assert flag in cookie
    assert "default-src 'self'" in page.headers["content-security-policy"]


async def test_wrong_password_and_unknown_account_are_refused(web: Web) -> None:
    for name, password in (("ann", "wrong"), ("nobody", PASSWORD)):
        response = await web.login(name, password)
        assert response.status_code == 401
        assert "Unknown account or wrong password" in response.text
    assert (await web.http.get("/review")).status_code == 303


async def test_login_then_review_shows_one_escaped_item_with_tags(web: Web) -> None:
    response = await web.login("ann")
    assert response.status_code == 303
    assert response.headers["location"] == "/review"
    page = await web.http.get("/review")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Tiny ViT" in page.text
    assert "<script>alert(1)" not in page.text
    buttons = re.findall(r'name="tag" value="([^"]+)" data-key="(\d)"', page.text)
    assert buttons == [(tag, str(i)) for i, tag in enumerate(TAGS, start=1)]
    assert 'rel="noopener noreferrer"' in page.text
    assert "0 labeled today · 2 in queue" in page.text
    assert "reported by users" not in page.text


async def test_posts_without_the_csrf_token_are_403(web: Web) -> None:
    await web.login("ann")
    for path, data in (
        ("/review/label", {"item_id": "a", "tag": "mlops"}),
        ("/review/skip", {"item_id": "a"}),
        ("/review/undo", {}),
        ("/logout", {}),
    ):
        missing = await web.http.post(path, data=data)
        wrong = await web.http.post(path, data={**data, "csrf_token": "forged"})
        assert (missing.status_code, wrong.status_code) == (403, 403), path
    assert await web.labeled_tags() == []


async def test_login_form_needs_the_csrf_token(web: Web) -> None:
    await web.http.get("/login")
    response = await web.http.post("/login", data={"name": "ann", "password": PASSWORD})
    assert response.status_code == 403


async def test_label_skip_and_undo_via_forms(web: Web) -> None:
    await web.login("ann")
    page = await web.http.get("/review")
    token = csrf(page)
    labeled = await web.http.post(
        "/review/label",
        data={"csrf_token": token, "item_id": "a", "tag": "computer-vision", "title": "Tiny ViT"},
    )
    assert (labeled.status_code, labeled.headers["location"]) == (303, "/review")
    assert await web.labeled_tags() == [("a", "computer-vision")]
    page = await web.http.get("/review")
    assert "Labeled “Tiny ViT” as computer-vision — press u to undo." in page.text
    assert "1 labeled today · 1 in queue" in page.text
    assert 'name="item_id" value="b"' in page.text
    # The flash is shown once.
    assert "press u to undo" not in (await web.http.get("/review")).text

    undone = await web.http.post("/review/undo", data={"csrf_token": token})
    assert undone.status_code == 303
    assert await web.labeled_tags() == []
    page = await web.http.get("/review")
    assert 'name="item_id" value="a"' in page.text
    assert "Undid your label" in page.text

    await web.http.post("/review/label", data={"csrf_token": token, "item_id": "a", "tag": "mlops"})
    await web.http.post("/review/skip", data={"csrf_token": token, "item_id": "b"})
    assert await web.labeled_tags() == [("a", "mlops")]


async def test_bad_tag_and_foreign_item_are_flashed_not_stored(web: Web) -> None:
    await web.login("ann")
    token = csrf(await web.http.get("/review"))
    bad_tag = await web.http.post(
        "/review/label", data={"csrf_token": token, "item_id": "a", "tag": "cooking"}
    )
    assert bad_tag.status_code == 303
    assert "not an approved tag" in (await web.http.get("/review")).text
    foreign = await web.http.post(
        "/review/label", data={"csrf_token": token, "item_id": "b", "tag": "mlops"}
    )
    assert foreign.status_code == 303
    assert "claim on that item expired" in (await web.http.get("/review")).text
    assert await web.labeled_tags() == []


async def test_admin_page_is_for_admins_only(web: Web) -> None:
    await web.login("ann")
    assert (await web.http.get("/admin")).status_code == 403
    web.http.cookies.clear()
    await web.login("root")
    page = await web.http.get("/admin")
    assert page.status_code == 200
    assert '<td id="queue-depth">2</td>' in page.text
    assert "Labels per reviewer" in page.text


async def test_logout_ends_the_session(web: Web) -> None:
    await web.login("ann")
    token = csrf(await web.http.get("/review"))
    response = await web.http.post("/logout", data={"csrf_token": token})
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert (await web.http.get("/review")).status_code == 303


async def test_a_tampered_cookie_is_no_session(web: Web) -> None:
    await web.login("ann")
    name = web.app.state.settings.review_session_cookie_name
    value = web.http.cookies[name]
    web.http.cookies.clear()
    web.http.cookies.set(name, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert (await web.http.get("/review")).status_code == 303


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ("/admin", "/admin"),
        ("//evil.example", "/review"),
        ("/\\evil.example", "/review"),
        ("https://evil.example", "/review"),
        (None, "/review"),
    ],
)
def test_login_returns_only_to_local_pages(asked: str | None, expected: str) -> None:
    assert _safe_next(asked) == expected


async def test_static_files_are_served_locally(web: Web) -> None:
    css = await web.http.get("/static/review.css")
    js = await web.http.get("/static/review.js")
    assert (css.status_code, js.status_code) == (200, 200)
    assert css.headers["content-type"].startswith("text/css")
    assert (await web.http.get("/static/../web.py")).status_code == 404


async def test_a_reported_item_comes_first_with_the_users_suggestion_and_comment(
    web: Web,
) -> None:
    report = request(
        "b",
        0.4,
        received_at=NOW,
        requested_at=NOW,
        schema_version=2,
        reason="user_report",
        suggested_tag="mlops",
        comment="<b>It is</b> about deploying models",
        report_count=2,
    )
    with web.app.state.review_db.sessions.begin() as session:
        store_request(session, report, NOW)
    await web.login("ann")

    page = await web.http.get("/review")

    assert page.status_code == 200
    assert 'data-item-id="b"' in page.text  # ahead of "a", whose confidence is lower
    assert "reported by users" in page.text
    assert "2 end users reported this item" in page.text
    assert re.search(r'class="suggested-tag">mlops<', page.text)
    assert "&lt;b&gt;It is&lt;/b&gt; about deploying models" in page.text
    suggested = re.findall(r'name="tag" value="([^"]+)"[^>]*class="tag[^"]*suggested', page.text)
    assert suggested == ["mlops"]
