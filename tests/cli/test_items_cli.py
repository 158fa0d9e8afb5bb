"""``tagstream items send``: a CSV through a real ingest process and broker, and the
pacing and retry rules on an in-memory transport beside it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from shared.messages import ContentItem
from shared.settings import Settings
from tagstream.cli.main import app
from tagstream.sending import Result, Row, Sender, SendError, Summary, read_rows
from tests.fixtures.data import synthetic_rows, write_rows
from tests.fixtures.kafka import read_topic
from tests.fixtures.services import ServiceProcess, port, running, service_env

KEY = "items-send-test-key"


@pytest.fixture
def client_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("TAGSTREAM_INGEST_URL", "TAGSTREAM_INGEST_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env, no var/dev-api-key


@pytest.mark.kafka
async def test_send_posts_every_row_once_and_a_second_send_lands_on_the_same_items(
    topics: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client_env: None
) -> None:
    rows = synthetic_rows(per_tag=5)
    rows.append({**rows[0], "id": "999", "title": "   "})  # blank title: refused by ingest
    data = write_rows(tmp_path / "posts.csv", rows)
    env = service_env(topics, TAGSTREAM_INGEST_API_KEYS=KEY, TAGSTREAM_INGEST_PORT=port())
    ingest = ServiceProcess("ingest", env, int(env["TAGSTREAM_INGEST_PORT"]), tmp_path)
    monkeypatch.setenv("TAGSTREAM_INGEST_URL", ingest.url)
    monkeypatch.setenv("TAGSTREAM_INGEST_API_KEY", KEY)
    with running(ingest.start("/readyz")):
        first = CliRunner().invoke(app, ["items", "send", str(data), "--rate", "1000"])
        assert first.exit_code == 1, first.output  # the blank title was rejected
        assert "20 accepted" in first.output
        assert "1 rejected" in first.output
        assert f"line {len(rows) + 1}: rejected: 422 title" in first.output
        raw = await read_topic(topics, topics.topic_raw, expect=20)
        items = [ContentItem.decode(value) for value in raw]
        assert sorted(i.title for i in items) == sorted(r["title"] for r in rows[:-1])
        assert {i.source for i in items} == {"posts.csv"}

        # a second send of the file (same source and ids) lands on the very same items
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=ingest.url, headers=headers) as client:
            summary = Summary()
            again = list(Sender(client).send_all(read_rows(data, "posts.csv"), summary))
        landed = {o.item_id for o in again if o.result is not Result.REJECTED}
        assert landed == {i.item_id for i in items}


def test_send_without_a_key_says_which_setting(tmp_path: Path, client_env: None) -> None:
    data = write_rows(tmp_path / "posts.csv", synthetic_rows(per_tag=1))
    result = CliRunner().invoke(app, ["items", "send", str(data)])
    assert result.exit_code == 2
    assert "TAGSTREAM_INGEST_API_KEY" in result.output


def test_send_to_nothing_fails_with_one_clear_line(
    tmp_path: Path, client_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_rows(tmp_path / "posts.csv", synthetic_rows(per_tag=1))
    monkeypatch.setenv("TAGSTREAM_INGEST_URL", f"http://127.0.0.1:{port()}")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "dev-api-key").write_text("dev-key\n")  # what `tagstream up` writes
    result = CliRunner().invoke(app, ["items", "send", str(data)])
    assert result.exit_code == 1
    assert "did not answer" in result.output
    assert "Traceback" not in result.output


def test_rows_map_to_the_ingest_body(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "a.csv", synthetic_rows(per_tag=1))
    row = read_rows(path, "a.csv")[0]
    assert row.line == 2
    assert set(row.body) == {"title", "description", "source", "external_id", "created_at"}
    assert row.body["created_at"] == "2020-03-01T10:00:00"
    (tmp_path / "b.csv").write_text("name,text\nx,y\n", encoding="utf-8")
    with pytest.raises(SendError, match="no title column"):
        read_rows(tmp_path / "b.csv", "b.csv")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(*statuses: tuple[int, dict[str, str]]) -> tuple[httpx.Client, list[httpx.Request]]:
    """An in-memory ingest answering each request with the next (status, headers)."""
    seen: list[httpx.Request] = []
    answers = iter(statuses)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, headers = next(answers)
        body = {"id": "item-1", "status": "accepted"} if status == 202 else {"detail": []}
        return httpx.Response(status, json=body, headers=headers)

    return httpx.Client(base_url="http://ingest", transport=httpx.MockTransport(handle)), seen


ROW = Row(2, {"title": "t", "source": "s"})


def test_429_and_503_wait_their_retry_after_with_one_idempotency_key() -> None:
    client, seen = scripted((429, {"Retry-After": "3"}), (503, {"Retry-After": "7"}), (202, {}))
    clock, summary = FakeClock(), Summary()
    outcome = Sender(client, sleep=clock.sleep, clock=lambda: clock.now).send(ROW, summary)
    assert outcome.result is Result.ACCEPTED
    assert clock.sleeps == [3.0, 7.0]
    assert summary.retries == 2
    assert len({r.headers["Idempotency-Key"] for r in seen}) == 1


def test_an_item_that_never_gets_through_is_failed_not_lost() -> None:
    client, _ = scripted(*[(503, {"Retry-After": "1"})] * 3)
    clock = FakeClock()
    sender = Sender(client, max_attempts=3, sleep=clock.sleep, clock=lambda: clock.now)
    outcome = sender.send(ROW, Summary())
    assert outcome.result is Result.FAILED
    assert "gave up after 3 attempts" in outcome.reason


def test_rate_paces_items_on_a_steady_schedule() -> None:
    client, _ = scripted(*[(202, {})] * 4)
    clock, summary = FakeClock(), Summary()
    sender = Sender(client, rate=2.0, sleep=clock.sleep, clock=lambda: clock.now)
    assert len(list(sender.send_all([ROW] * 4, summary))) == 4
    assert clock.sleeps == [0.5, 0.5, 0.5]  # items at 0, 0.5, 1.0, 1.5 s
    assert summary.complete


def test_a_refused_key_stops_the_whole_send() -> None:
    client, _ = scripted((401, {}))
    with pytest.raises(SendError, match="TAGSTREAM_INGEST_API_KEY"):
        Sender(client).send(ROW, Summary())
