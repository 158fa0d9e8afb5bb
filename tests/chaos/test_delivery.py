"""Delivery under faults, ids reconciled: nothing a 2xx acknowledged is lost.

Real ingest, classifier and review processes on the real embedded broker. Items are
posted (singles and batches) while the classifier is SIGKILLed at three random points
and restarted, and a second classifier joins the group and later leaves it. Afterwards
every accepted item id is reconciled against ``content.classified`` (and the DLQ) and
the review database. Duplicates before dedupe are expected (at least once) and printed;
losses must be zero. ``TAGSTREAM_CHAOS_ITEMS`` sets the size (``make test-chaos``: 10,000).

Then the review service is SIGKILLed while its outbox relay holds a committed label it
has read and not yet produced (on SQLite and on PostgreSQL); the restarted service sends
it, and the human decision is on ``content.classified`` exactly once after dedupe on
label_id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared.db.session import make_engine, make_session_factory
from shared.kafka import Output, create_producer, ensure_topics
from shared.kafka.batch import produce_all
from shared.messages import Classification, DeadLetter, ReviewRequest
from shared.ml.training import train
from shared.settings import Settings
from tagstream.local.broker import EmbeddedBroker
from tests.fixtures.data import VOCAB, synthetic_rows, write_rows
from tests.fixtures.kafka import eventually, read_all, settings_for
from tests.fixtures.services import ServiceProcess, port, reviewer_token, running, service_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.chaos]

ITEMS = int(os.environ.get("TAGSTREAM_CHAOS_ITEMS", "1500"))
KEY = "chaos-ingest-key"
BATCH = 25
CONCURRENCY = 8
KILLS = 3
STREAM_SECONDS = 40
#: kills land between 10% and this share of the stream
LAST_KILL_POINT = 0.85
TRICKLE_SECONDS = 0.5
# A SIGKILLed member holds its partitions until its session times out: keep that short.
GROUP_TIMING = {
    "TAGSTREAM_CLASSIFIER_SESSION_TIMEOUT_MS": "6000",
    "TAGSTREAM_CLASSIFIER_HEARTBEAT_INTERVAL_MS": "1000",
}


_T0 = time.monotonic()


def note(event: str) -> str:
    """``event``, printed at once with the seconds since the module loaded (``-s`` shows
    where a slow or failing run spent its time) and returned for the summary."""
    print(f"[{time.monotonic() - _T0:7.1f} s] {event}", flush=True)
    return event


def item(n: int, rng: random.Random) -> dict[str, str]:
    """A distinct post (ingest screens repeated content as a duplicate)."""
    tag = rng.choice(sorted(VOCAB))
    words = rng.sample(VOCAB[tag], 3)
    return {
        "title": f"{words[0].title()} chaos item {n}",
        "description": f"We use {words[1]} and {words[2]} for case {n}.",
        "source": "chaos",
    }


class Poster:
    """Posts items through ingest at a steady pace, keeping every id a 2xx acknowledged.

    The chaos is scheduled by items posted, but its restarts take what the machine gives
    them: on a loaded one they outlasted the 40 s stream, and a member then waited for
    items that never came (60 s each) or never decided any (the test failed). So the
    stream's tail, after the last kill point, is held while the chaos runs and trickled
    meanwhile, one item per ``TRICKLE_SECONDS``; the rest follows once it is done.
    """

    def __init__(self, url: str, total: int, rate: float) -> None:
        self.url, self.total, self.rate = url, total, rate
        self.accepted: set[str] = set()
        self.posted = 0
        self.trickled = 0
        self.statuses: Counter[int] = Counter()
        self.chaos_done = asyncio.Event()
        self._progress = asyncio.Condition()

    async def reached(self, count: int) -> None:
        async with self._progress:
            await self._progress.wait_for(lambda: self.posted >= count)

    async def run(self, seed: int) -> None:
        rng = random.Random(seed)
        items = [item(n, rng) for n in range(self.total)]
        cut = int(LAST_KILL_POINT * self.total)  # every kill point is reached by then
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30) as client:
            await self._paced(client, items[:cut])
            tail = items[cut:]
            while tail and not self.chaos_done.is_set():
                await self._post(client, [tail.pop(0)])
                self.trickled += 1
                await self._advance(1)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.chaos_done.wait(), TRICKLE_SECONDS)
            await self._paced(client, tail)

    async def _paced(self, client: httpx.AsyncClient, items: list[dict[str, str]]) -> None:
        # half as batches, half as singles, interleaved
        chunks: list[list[dict[str, str]]] = []
        n = 0
        while n < len(items):
            size = BATCH if (len(chunks) % 2 == 0) else 1
            chunks.append(items[n : n + size])
            n += size
        queue: asyncio.Queue[list[dict[str, str]]] = asyncio.Queue()
        for chunk in chunks:
            queue.put_nowait(chunk)
        start, sent = time.monotonic(), 0

        async def worker() -> None:
            nonlocal sent
            while not queue.empty():
                chunk = queue.get_nowait()
                ahead = sent / self.rate - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
                await self._post(client, chunk)
                sent += len(chunk)
                await self._advance(len(chunk))

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))

    async def _advance(self, count: int) -> None:
        async with self._progress:
            self.posted += count
            self._progress.notify_all()

    async def _post(self, client: httpx.AsyncClient, chunk: list[dict[str, str]]) -> None:
        idempotency = {"Idempotency-Key": uuid.uuid4().hex}
        while True:
            if len(chunk) == 1:
                response = await client.post("/v1/items", json=chunk[0], headers=idempotency)
            else:
                response = await client.post(
                    "/v1/items:batch", json={"items": chunk}, headers=idempotency
                )
            self.statuses[response.status_code] += 1
            if response.status_code in (429, 503):  # retried, as a scraper would
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            assert response.status_code == 202, response.text
            body = response.json()
            results = body["items"] if len(chunk) > 1 else [body]
            assert {r["status"] for r in results} == {"accepted"}, results
            self.accepted.update(r["id"] for r in results)
            return


async def chaos(
    poster: Poster, first: ServiceProcess, second: ServiceProcess, seed: int
) -> list[str]:
    """Kill ``first`` three times at random points of the stream (restarting it each time);
    ``second`` joins after the first kill and leaves (SIGTERM) after the second."""
    rng = random.Random(seed)
    points = sorted(rng.uniform(0.1, LAST_KILL_POINT) for _ in range(KILLS))
    events: list[str] = []
    for n, point in enumerate(points):
        await poster.reached(int(point * poster.total))
        # each kill hits a member at work: in the group and deciding since its start
        decided = await eventually(
            lambda: metric(first, "tagstream_classifier_items_total"), lambda d: d > 0, within=60
        )
        await asyncio.sleep(rng.uniform(0, 0.5))
        first.kill()
        events.append(note(f"kill -9 classifier at {poster.posted} posted ({decided:.0f} decided)"))
        await asyncio.to_thread(first.start, "/healthz")
        events.append(note(f"classifier restarted at {poster.posted} posted"))
        if n == 0:
            await asyncio.to_thread(second.start, "/healthz")
            events.append(note(f"second classifier joined at {poster.posted} posted"))
        if n == 1:
            # it leaves only once it has taken part: partitions were moved to it
            await eventually(
                lambda: metric(second, "tagstream_classifier_items_total"),
                lambda d: d > 0,
                within=60,
            )
            assignments = await metric(second, "tagstream_consumer_rebalances_total")
            decided = await metric(second, "tagstream_classifier_items_total")
            assert decided > 0, "no partition ever moved to the second classifier"
            await asyncio.to_thread(second.stop)
            events.append(
                note(
                    f"second classifier left at {poster.posted} posted, after"
                    f" {assignments:.0f} assignments and {decided:.0f} decisions"
                )
            )
    return events


async def metric(service: ServiceProcess, name: str) -> float:
    """The sum of a metric's samples on the service's /metrics."""
    async with httpx.AsyncClient(base_url=service.url, timeout=5) as http:
        body = (await http.get("/metrics")).text
    return sum(
        float(line.split()[-1])
        for line in body.splitlines()
        if line.startswith((f"{name} ", f"{name}{{"))
    )


def review_item_ids(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return [row[0] for row in session.execute(text("SELECT item_id FROM review_items"))]
    finally:
        engine.dispose()


async def test_every_acknowledged_item_is_decided_once_through_kills_and_rebalances(
    topics: Settings, tmp_path: Path
) -> None:
    settings = topics
    train(settings, data_location=str(write_rows(tmp_path / "a.csv", synthetic_rows())))
    suffix = uuid.uuid4().hex[:8]
    groups = {"classifier": f"classifier-{suffix}", "review": f"review-{suffix}"}
    env = service_env(
        settings,
        TAGSTREAM_INGEST_API_KEYS=KEY,
        TAGSTREAM_CLASSIFIER_GROUP_ID=groups["classifier"],
        TAGSTREAM_REVIEW_GROUP_ID=groups["review"],
        **GROUP_TIMING,
    )

    def process(name: str) -> ServiceProcess:
        p = port()
        return ServiceProcess(name, {**env, f"TAGSTREAM_{name.upper()}_PORT": p}, int(p), tmp_path)

    ingest, review = process("ingest"), process("review")
    first, second = process("classifier"), process("classifier")
    rate = ITEMS / STREAM_SECONDS  # long enough for the kills and restarts to land in it
    poster = Poster(ingest.url, ITEMS, rate)
    started = time.monotonic()
    with running(ingest, review, first, second):
        ingest.start("/readyz")
        review.start("/readyz")
        first.start("/healthz")
        note("ingest, review and a classifier started; posting")

        async def chaos_then_release() -> list[str]:
            try:
                return await chaos(poster, first, second, seed=14)
            finally:
                poster.chaos_done.set()

        events, _ = await asyncio.gather(chaos_then_release(), poster.run(14))
        posting = time.monotonic() - started
        expected = poster.accepted
        note(
            f"posted {poster.posted} ({poster.trickled} trickled while the chaos ran),"
            f" statuses {dict(poster.statuses)}"
        )

        async def decided() -> set[str]:
            values = await read_all(settings, settings.topic_classified, within=120)
            ids = {Classification.decode(v).item_id for v in values}
            note(f"{len(ids & expected)} of {len(expected)} decided")
            return ids

        await eventually(decided, lambda ids: ids >= expected, within=240)
        decisions = [
            Classification.decode(v)
            for v in await read_all(settings, settings.topic_classified, within=120)
        ]
        to_review = {d.item_id for d in decisions if d.route == "review"}
        await eventually(
            lambda: asyncio.to_thread(review_item_ids, settings.database_url),
            lambda ids: set(ids) >= to_review,
            within=60,
        )
        letters = [DeadLetter.decode(v) for v in await read_all(settings, settings.topic_dlq)]
        requests = [
            ReviewRequest.decode(v) for v in await read_all(settings, settings.topic_review)
        ]
        reviewed = review_item_ids(settings.database_url)

    accepted = poster.accepted
    per_item = Counter(d.item_id for d in decisions)
    lettered = {(d.original_key() or b"").decode() for d in letters}
    lost = accepted - set(per_item) - lettered
    duplicates = sum(n - 1 for n in per_item.values())
    print(  # the figures docs/reliability.md reports
        f"\nchaos delivery: {ITEMS} items, {len(accepted)} accepted,"
        f" statuses {dict(poster.statuses)}, {poster.trickled} trickled,"
        f" {len(decisions)} decisions ({duplicates} duplicates before dedupe),"
        f" {len(letters)} dead letters, {len(lost)} lost, {len(reviewed)} in review,"
        f" {len(requests) - len(set(r.item_id for r in requests))} duplicate review requests,"
        f" posting+chaos {posting:.0f} s, total {time.monotonic() - started:.0f} s"
    )
    print("\n".join(events))
    assert len(accepted) == ITEMS
    assert len(events) == 2 * KILLS + 2
    assert not lost, f"{len(lost)} acknowledged items never decided: {sorted(lost)[:10]}"
    assert set(per_item) <= accepted, "a decision for an item nobody posted"
    assert not letters, [d.error for d in letters[:5]]
    # the review database holds each routed item once (its primary key), and exactly those
    to_review = {d.item_id for d in decisions if d.route == "review"}
    assert 0 < len(to_review) < len(accepted)
    assert len(reviewed) == len(set(reviewed))
    assert set(reviewed) == {r.item_id for r in requests}
    assert to_review <= set(reviewed) <= accepted


# -- the review service killed between its commit and its produce ---------------------


def write_lock_held(path: str, seconds: float) -> bool:
    """Someone holds the SQLite write lock for ``seconds``: the relay, mid-produce (an
    empty poll ends its transaction at once)."""
    connection = sqlite3.connect(path, timeout=seconds, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        connection.close()


def outbox_rows_locked(url: str, label_id: str) -> bool:
    """Another transaction holds the row locks of the label's outbox rows on PostgreSQL:
    the relay, which takes them when it reads the rows (``FOR UPDATE SKIP LOCKED``) and
    keeps them until it marks them sent. The label's own transaction has committed (the
    API answered), so nothing else can hold them. ``NOWAIT`` answers at once either way;
    when free, this probe holds them only for its own instant (a relay poll then skips
    them once and takes them at its next poll)."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as connection:
        try:
            connection.execute(
                "SELECT id FROM review_outbox"
                " WHERE label_id = %s AND sent_at IS NULL FOR UPDATE NOWAIT",
                (label_id,),
            )
        except psycopg.errors.LockNotAvailable:
            return True
        finally:
            connection.rollback()
    return False


def relay_mid_produce(url: str, label_id: str) -> bool:
    """The relay has read the label's rows and is producing them (not yet marked sent)."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        assert database is not None
        return write_lock_held(database, 1.0)
    return outbox_rows_locked(url, label_id)


async def until(probe: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await probe():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.1)


async def test_review_killed_between_commit_and_produce_sends_the_label_once(
    tmp_path: Path, database_url: str
) -> None:
    # A broker of this test's own: it is paused, and the session's must not be.
    with EmbeddedBroker(log_file=tmp_path / "broker.log") as broker:
        settings = settings_for(broker, tmp_path, partitions=2, database_url=database_url)
        await ensure_topics(settings)
        token = reviewer_token(settings.database_url)
        now = datetime.now(UTC)
        request = ReviewRequest(
            item_id="crash-1",
            title="graph neural networks",
            reason="low_confidence",
            predicted_tag="other",
            confidence=0.3,
            probabilities={"other": 0.3, "mlops": 0.7},
            model_version="v1",
            received_at=now,
            requested_at=now,
        )
        producer = create_producer(settings)
        await producer.start()
        try:
            await produce_all(
                producer, [Output(settings.topic_review, b"crash-1", request.encode())]
            )
        finally:
            await producer.stop()

        review_port = port()
        env = service_env(
            settings,
            TAGSTREAM_REVIEW_PORT=review_port,
            TAGSTREAM_REVIEW_GROUP_ID=f"review-{settings.topic_review}",
            TAGSTREAM_REVIEW_OUTBOX_POLL_SECONDS="0.2",
        )
        first = ServiceProcess("review", env, int(review_port), tmp_path)
        headers = {"Authorization": f"Bearer {token}"}
        assert broker.process is not None
        with running(first.start("/readyz")):
            async with httpx.AsyncClient(base_url=first.url, headers=headers, timeout=10) as http:

                async def claimed() -> bool:
                    return (await http.post("/v1/review/claim")).status_code == 200

                await until(claimed, 30, "the review request never reached the queue")
                os.kill(broker.process.pid, signal.SIGSTOP)  # nothing can be acknowledged now
                try:
                    labeled = await http.post(
                        "/v1/review/items/crash-1/label", json={"tag": "computer-vision"}
                    )
                    assert labeled.status_code == 200, labeled.text  # committed
                    label_id = labeled.json()["label_id"]

                    async def relay_holds_it() -> bool:
                        return await asyncio.to_thread(
                            relay_mid_produce, settings.database_url, label_id
                        )

                    await until(relay_holds_it, 30, "the relay never picked the label up")
                    first.kill()  # read and committed, never acknowledged by the broker
                finally:
                    os.kill(broker.process.pid, signal.SIGCONT)

        second = ServiceProcess("review", env, int(review_port), tmp_path)
        with running(second.start("/healthz")):

            async def relayed() -> bool:
                return any(
                    Classification.decode(v).label_id == label_id
                    for v in await read_all(settings, settings.topic_classified)
                )

            await until(relayed, 60, "the label's decision never reached content.classified")
            decisions = [
                Classification.decode(v)
                for v in await read_all(settings, settings.topic_classified)
            ]
    copies = [d for d in decisions if d.label_id == label_id]
    print(f"\nreview crash: {len(copies)} copies of the human decision before dedupe")
    assert {d.label_id for d in decisions} == {label_id}  # nothing invented
    assert {(d.item_id, d.route, d.tag) for d in copies} == {
        ("crash-1", "human", "computer-vision")
    }
