"""Secrets never reach logs, /metrics or answers: the services run as real processes with
known secret values (API keys, the session secret, the database password, a reviewer's
token and password), are used rightly and wrongly (bad keys, bad input, failed logins,
an unreachable database, a refused start-up), and every log line, every /metrics page
and every answer is searched for each secret."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from services.review.accounts import create_account
from shared.db.session import make_engine, make_session_factory
from shared.settings import Settings
from tests.fixtures.db import _fresh_postgres_database, migrated
from tests.fixtures.services import ServiceProcess, port, running, service_env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

INGEST_KEY = "ingest-key-S3CRET-4b1d8e0c2f"
FEEDBACK_KEY = "feedback-key-S3CRET-93ac77e1"
ROLLOUT_KEY = "rollout-key-S3CRET-0d5e6f71aa"
SESSION_SECRET = "session-secret-S3CRET-5c2b8a9e1f7d3c4b"
DB_PASSWORD = "db-password-S3CRET-e81f"
REVIEWER_PASSWORD = "reviewer-password-S3CRET-77"
SHORT_KEY = "short-S3CRET-1"  # under the production minimum: start-up refused


@contextmanager
def postgres_with_password() -> Iterator[str]:
    """A fresh PostgreSQL database; the local server trusts loopback, so the password in
    the URL is accepted and ignored, as a real one would be checked."""
    with contextmanager(_fresh_postgres_database)() as url:
        yield make_url(url).set(password=DB_PASSWORD).render_as_string(hide_password=False)


class Transcript:
    """Every answer the test received, headers and body."""

    def __init__(self) -> None:
        self.answers: list[str] = []

    def keep(self, response: httpx.Response) -> httpx.Response:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.answers.append(f"{response.request.method} {response.url}\n{headers}\n{response.text}")
        return response


def test_no_secret_in_logs_metrics_or_answers(topics: Settings, tmp_path: Path) -> None:
    seen = Transcript()
    with postgres_with_password() as url:
        migrated(url)
        engine = make_engine(url)
        with make_session_factory(engine).begin() as session:
            token = create_account(
                session, "rita", "reviewer", datetime.now(UTC), REVIEWER_PASSWORD
            )[1]
        engine.dispose()
        secrets = {
            "ingest key": INGEST_KEY,
            "feedback key": FEEDBACK_KEY,
            "rollout key": ROLLOUT_KEY,
            "session secret": SESSION_SECRET,
            "database password": DB_PASSWORD,
            "reviewer password": REVIEWER_PASSWORD,
            "reviewer token": token,
            "refused short key": SHORT_KEY,
        }
        env = service_env(
            topics,
            TAGSTREAM_DATABASE_URL=url,
            TAGSTREAM_LOG_LEVEL="DEBUG",
            TAGSTREAM_INGEST_API_KEYS=INGEST_KEY,
            TAGSTREAM_FEEDBACK_API_KEYS=FEEDBACK_KEY,
            TAGSTREAM_ROLLOUT_ADMIN_KEYS=ROLLOUT_KEY,
            TAGSTREAM_REVIEW_SESSION_SECRET=SESSION_SECRET,
            TAGSTREAM_REVIEW_SESSION_COOKIE_SECURE="false",
            TAGSTREAM_INGEST_PORT=port(),
            TAGSTREAM_REVIEW_PORT=port(),
            TAGSTREAM_FEEDBACK_PORT=port(),
            TAGSTREAM_ROLLOUT_PORT=port(),
        )
        names = ("ingest", "review", "feedback", "rollout")
        processes = [
            ServiceProcess(name, env, int(env[f"TAGSTREAM_{name.upper()}_PORT"]), tmp_path)
            for name in names
        ]
        with running(*processes):
            for process in processes:
                process.start(ready_path="/readyz")
            ingest, review, feedback, rollout = processes
            _exercise(seen, ingest.url, review.url, feedback.url, rollout.url, token)
            for process in processes:
                seen.keep(httpx.get(process.url + "/metrics"))
                seen.keep(httpx.get(process.url + "/readyz"))
        _database_down(seen, env, tmp_path, token)
        refused = _refused_start(env)
    logs = [path.read_text(errors="replace") for path in tmp_path.glob("*.log")]
    assert len(logs) == 5
    assert all(log.count("\n") >= 10 for log in logs)  # DEBUG: the logs say a lot
    assert any('"event": "database_unavailable"' in log for log in logs)  # the failure ran
    for name, secret in secrets.items():
        for text in [*logs, *seen.answers, refused]:
            assert secret not in text, f"{name} found in:\n{_around(text, secret)}"


def _exercise(
    seen: Transcript, ingest: str, review: str, feedback: str, rollout: str, token: str
) -> None:
    def bearer(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    report = {"item_id": "i-1", "suggested_tag": "mlops", "end_user_id": "u-1"}
    items, claim, label = (
        f"{ingest}/v1/items",
        f"{review}/v1/review/claim",
        f"{review}/v1/review/items/x/label",
    )
    reports, rollouts = f"{feedback}/v1/reports", f"{rollout}/v1/rollouts"
    calls: list[tuple[str, str, dict[str, object], int]] = [
        # ingest: accepted, invalid, unparsable, another service's key, a near miss
        ("POST", items, {"json": {"title": "ok"}, "headers": bearer(INGEST_KEY)}, 202),
        ("POST", items, {"json": {"title": ""}, "headers": bearer(INGEST_KEY)}, 422),
        ("POST", items, {"content": b"{", "headers": bearer(INGEST_KEY)}, 422),
        ("POST", items, {"json": {"title": "x"}, "headers": bearer(FEEDBACK_KEY)}, 401),
        ("POST", items, {"json": {}, "headers": bearer(INGEST_KEY + "x")}, 401),
        # review API: the token, bad input, a role refusal, the password as a token
        ("POST", claim, {"headers": bearer(token)}, 204),
        ("POST", label, {"json": {"tag": "no"}, "headers": bearer(token)}, 422),
        ("POST", label, {"json": {"tag": "mlops"}, "headers": bearer(token)}, 409),
        ("GET", f"{review}/v1/review/stats", {"headers": bearer(token)}, 403),
        ("POST", claim, {"headers": bearer(REVIEWER_PASSWORD)}, 401),
        # feedback and rollout: right and wrong keys, bad input, unknown version
        ("POST", reports, {"json": report, "headers": bearer(FEEDBACK_KEY)}, 202),
        ("POST", reports, {"json": {"x": 1}, "headers": bearer(FEEDBACK_KEY)}, 422),
        ("POST", reports, {"json": report, "headers": bearer(ROLLOUT_KEY)}, 401),
        ("GET", rollouts, {"headers": bearer(ROLLOUT_KEY)}, 200),
        ("POST", rollouts, {"json": {"version": "v9"}, "headers": bearer(ROLLOUT_KEY)}, 404),
        ("GET", rollouts, {"headers": bearer(INGEST_KEY)}, 401),
    ]
    for method, url, options, status in calls:
        response = seen.keep(httpx.request(method, url, **options))  # type: ignore[arg-type]
        assert response.status_code == status, (method, url, response.text)
    # review web: a failed login, the password typed as the name, a good login
    with httpx.Client(base_url=review) as browser:
        for name, password, status in (
            ("rita", "wrong password", 401),
            (REVIEWER_PASSWORD, "rita", 401),
            ("rita", REVIEWER_PASSWORD, 303),
        ):
            page = seen.keep(browser.get("/login"))
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert csrf is not None
            form = {"csrf_token": csrf.group(1), "name": name, "password": password}
            assert seen.keep(browser.post("/login", data=form)).status_code == status
        assert seen.keep(browser.get("/review")).status_code == 200


def _database_down(seen: Transcript, env: dict[str, str], tmp_path: Path, token: str) -> None:
    """Review with its database's URL (password included) pointing at a closed port."""
    closed = make_url(env["TAGSTREAM_DATABASE_URL"]).set(port=int(port()))
    down_env = {
        **env,
        "TAGSTREAM_DATABASE_URL": closed.render_as_string(hide_password=False),
        "TAGSTREAM_REVIEW_PORT": port(),
    }
    review = ServiceProcess("review", down_env, int(down_env["TAGSTREAM_REVIEW_PORT"]), tmp_path)
    with running(review):
        review.start(ready_path="/healthz")
        assert seen.keep(httpx.get(review.url + "/readyz")).status_code == 503
        claim = seen.keep(
            httpx.post(
                review.url + "/v1/review/claim", headers={"Authorization": f"Bearer {token}"}
            )
        )
        assert claim.status_code == 503
        assert claim.headers["Retry-After"]
        seen.keep(httpx.get(review.url + "/metrics"))


def _refused_start(env: dict[str, str]) -> str:
    """A production start-up refused for a short key: what it prints names the variable."""
    refused = subprocess.run(
        [sys.executable, "-m", "services.ingest"],
        env={**env, "TAGSTREAM_ENVIRONMENT": "production", "TAGSTREAM_INGEST_API_KEYS": SHORT_KEY},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "TAGSTREAM_INGEST_API_KEYS" in refused.stderr
    return refused.stdout + refused.stderr


def _around(text: str, secret: str) -> str:
    at = text.index(secret)
    return text[max(0, at - 300) : at + 300]
