"""The admin page's account actions and the login throttle, over ASGI."""

from __future__ import annotations

import re

import httpx

from services.review.accounts import describe_accounts
from services.review.auth import authenticate_password, authenticate_token, create_account
from tests.services.review.test_web import NOW, PASSWORD, Web, csrf, web

__all__ = ["web"]  # the fixture, shared with test_web


def _token_of(web: Web, name: str) -> str:
    with web.app.state.review_db.sessions.begin() as session:
        return create_account(session, name, "reviewer", NOW, password=PASSWORD)[1]


def _states(web: Web) -> dict[str, tuple[bool, bool]]:
    with web.app.state.review_db.sessions.begin() as session:
        return {a.name: (a.disabled, a.token_revoked) for a in describe_accounts(session)}


async def _post(web: Web, path: str, **fields: str) -> httpx.Response:
    page = await web.http.get("/admin")
    return await web.http.post(path, data={"csrf_token": csrf(page), **fields})


async def test_admin_disables_enables_and_removes_an_account(web: Web) -> None:
    token = _token_of(web, "cat")
    await web.login("root")
    page = await web.http.get("/admin")
    assert 'id="account-cat"' in page.text
    done = await _post(web, "/admin/accounts/cat/disable")
    assert (done.status_code, done.headers["location"]) == (303, "/admin")
    assert _states(web)["cat"] == (True, False)
    with web.app.state.review_db.sessions.begin() as session:
        assert authenticate_token(session, token) is None
    assert "Disabled cat" in (await web.http.get("/admin")).text
    await _post(web, "/admin/accounts/cat/enable")
    assert _states(web)["cat"] == (False, False)
    await _post(web, "/admin/accounts/cat/remove")
    assert "cat" not in _states(web)
    # an admin cannot lock themselves out
    await _post(web, "/admin/accounts/root/disable")
    assert _states(web)["root"] == (False, False)


async def test_admin_rotates_revokes_and_resets(web: Web) -> None:
    old = _token_of(web, "cat")
    await web.login("root")
    shown = await _post(web, "/admin/accounts/cat/token/rotate")
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    found = re.search(r'<code id="new-token">([^<]+)</code>', shown.text)
    assert found is not None
    new = found.group(1)
    sessions = web.app.state.review_db.sessions
    with sessions.begin() as session:
        assert authenticate_token(session, old) is None
        assert authenticate_token(session, new) is not None
    await _post(web, "/admin/accounts/cat/token/revoke")
    with sessions.begin() as session:
        assert authenticate_token(session, new) is None
    assert new not in (await web.http.get("/admin")).text
    await _post(web, "/admin/accounts/cat/password", password="brand new password")
    with sessions.begin() as session:
        assert authenticate_password(session, "cat", PASSWORD) is None
        assert authenticate_password(session, "cat", "brand new password") is not None


async def test_a_reviewer_cannot_use_the_account_actions(web: Web) -> None:
    _token_of(web, "cat")
    await web.login("ann")
    page = await web.http.get("/review")
    for action in ("disable", "remove", "token/revoke", "token/rotate", "password"):
        response = await web.http.post(
            f"/admin/accounts/cat/{action}",
            data={"csrf_token": csrf(page), "password": "x" * 20},
        )
        assert response.status_code == 403, action
    assert _states(web)["cat"] == (False, False)
    with web.app.state.review_db.sessions.begin() as session:
        assert authenticate_password(session, "cat", PASSWORD) is not None


async def test_a_disabled_account_loses_its_web_session_at_once(web: Web) -> None:
    await web.login("ann")
    assert (await web.http.get("/review")).status_code == 200
    admin = httpx.AsyncClient(transport=web.http._transport, base_url="https://review")
    async with admin:
        other = Web(web.app, admin)
        await other.login("root")
        await _post(other, "/admin/accounts/ann/disable")
    assert (await web.http.get("/review")).status_code == 303


async def test_logins_are_throttled_per_account(web: Web) -> None:
    for _ in range(5):  # review_login_max_failures defaults to 5
        assert (await web.login("ann", "wrong password")).status_code == 401
    refused = await web.login("ann", PASSWORD)  # even the right password, for now
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many failed logins" in refused.text
    assert (await web.http.get("/review")).status_code == 303
    assert (await web.login("root")).status_code == 303  # another account still may
    registry = web.app.state.metrics.registry
    counts = {
        result: registry.get_sample_value("tagstream_review_logins_total", {"result": result})
        for result in ("ok", "failed", "throttled")
    }
    assert counts == {"ok": 1.0, "failed": 5.0, "throttled": 1.0}


async def test_logins_are_throttled_per_address(web: Web) -> None:
    for i in range(20):  # review_login_max_failures_per_address defaults to 20
        assert (await web.login(f"nobody{i}", "wrong password")).status_code == 401
    assert (await web.login("root")).status_code == 429


async def test_a_password_reset_ends_the_accounts_web_sessions(web: Web) -> None:
    await web.login("ann")
    assert (await web.http.get("/review")).status_code == 200
    admin = httpx.AsyncClient(transport=web.http._transport, base_url="https://review")
    async with admin:
        other = Web(web.app, admin)
        await other.login("root")
        await _post(other, "/admin/accounts/ann/password", password="a brand new password")
        assert (await admin.get("/admin")).status_code == 200  # root's own session stays
    assert (await web.http.get("/review")).status_code == 303
    assert (await web.login("ann", "a brand new password")).status_code == 303
    assert (await web.http.get("/review")).status_code == 200


async def test_a_legacy_hash_upgraded_at_login_keeps_that_login(web: Web) -> None:
    from services.review.tables import ReviewAccountRow
    from tests.services.review.test_accounts import _legacy_scrypt

    with web.app.state.review_db.sessions.begin() as session:
        session.get_one(ReviewAccountRow, "ann").password_hash = _legacy_scrypt(PASSWORD)
    assert (await web.login("ann")).status_code == 303
    assert (await web.http.get("/review")).status_code == 200
    with web.app.state.review_db.sessions.begin() as session:
        stored = session.get_one(ReviewAccountRow, "ann").password_hash
    assert stored is not None
    assert stored.startswith("$argon2id$")


async def test_the_label_form_ignores_smuggled_fields(web: Web) -> None:
    from services.review.tables import ReviewLabelRow

    await web.login("ann")
    page = await web.http.get("/review")
    item_id = re.search(r'name="item_id" value="([^"]+)"', page.text)
    assert item_id is not None
    form = {
        "csrf_token": csrf(page),
        "item_id": item_id.group(1),
        "tag": "mlops",
        "reviewer": "root",
        "reviewer_id": "root",
        "model_version": "forged",
        "role": "admin",
    }
    assert (await web.http.post("/review/label", data=form)).status_code == 303
    with web.app.state.review_db.sessions.begin() as session:
        (label,) = session.query(ReviewLabelRow).all()
        assert (label.reviewer, label.model_version, label.tag) == ("ann", "v1", "mlops")
    assert _states(web)["ann"] == (False, False)
