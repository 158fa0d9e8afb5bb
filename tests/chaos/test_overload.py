"""Ingest overloaded on purpose, with small limits set by settings so the test is cheap.

Real ingest and classifier processes on an embedded broker of the test's own (it is
paused). Three phases: one API key over its rate (429); the broker paused while batches
wait for their acknowledgements, so items in flight reach their bound and the next
requests are refused at once (503) while the first still wait; then a burst of
concurrent singles and batches from several keys. Invariants, whatever the phase: only
202, 429 or 503; every 429 and 503 carries ``Retry-After`` and a reason; every id a 202
gave is on ``content.raw`` and decided on ``content.classified``; nothing of a refused
request was written; the classifier's group catches up with ``content.raw`` afterwards.
Figures: ``capacity`` in ``tests/bench/bench_capacity.py`` (``make capacity``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shared.kafka import ensure_topics
from shared.messages import Classification, ContentItem
from shared.ml.training import train
from tagstream.local.broker import EmbeddedBroker
from tests.fixtures.data import synthetic_rows, write_rows
from tests.fixtures.kafka import committed_behind, eventually, read_all, settings_for
from tests.fixtures.services import ServiceProcess, port, running, service_env

pytestmark = [pytest.mark.kafka, pytest.mark.chaos]

KEYS = ("overload-a", "overload-b", "overload-c", "overload-d")
BATCH = 25
RATE = 2  # items per second per key: a second burst takes 12.5 s to come back
BURST = 2 * BATCH
MAX_IN_FLIGHT = 2 * BATCH
LIMITS = {
    "TAGSTREAM_INGEST_MAX_BATCH_ITEMS": str(BATCH),
    "TAGSTREAM_INGEST_RATE_LIMIT_ITEMS_PER_SECOND": str(RATE),
    "TAGSTREAM_INGEST_RATE_LIMIT_BURST_ITEMS": str(BURST),
    "TAGSTREAM_INGEST_MAX_IN_FLIGHT_ITEMS": str(MAX_IN_FLIGHT),
    "TAGSTREAM_INGEST_OVERLOAD_RETRY_AFTER_SECONDS": "1",
    # the paused broker must not turn the held batches into 503s of their own
    "TAGSTREAM_INGEST_PRODUCE_TIMEOUT_SECONDS": "60",
}


@dataclass
class Ledger:
    """Every answer ingest gave, checked against the invariants as it comes."""

    accepted: set[str] = field(default_factory=set)
    refused_titles: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    async def post(self, client: httpx.AsyncClient, key: str, size: int) -> int:
        titles = [f"overload {uuid.uuid4().hex} graph networks" for _ in range(size)]
        headers = {"Authorization": f"Bearer {key}"}
        if size == 1:
            response = await client.post("/v1/items", json={"title": titles[0]}, headers=headers)
        else:
            body = {"items": [{"title": t} for t in titles]}
            response = await client.post("/v1/items:batch", json=body, headers=headers)
        status = response.status_code
        self.statuses[status] += 1
        assert status in (202, 429, 503), (status, response.text)
        if status == 202:
            body = response.json()
            results = body["items"] if size > 1 else [body]
            assert {r["status"] for r in results} == {"accepted"}, results
            self.accepted.update(r["id"] for r in results)
        else:
            assert int(response.headers["Retry-After"]) >= 1, response.headers
            [error] = response.json()["detail"]
            reason = "overloaded" if "overloaded" in error["reason"] else "rate_limited"
            assert reason == {429: "rate_limited", 503: "overloaded"}[status], error
            self.reasons[reason] += 1
            self.refused_titles.update(titles)
        return status


async def in_flight(client: httpx.AsyncClient) -> float:
    body = (await client.get("/metrics")).text
    [line] = [x for x in body.splitlines() if x.startswith("tagstream_ingest_in_flight_items ")]
    return float(line.split()[-1])


async def test_overload_is_refused_with_retry_after_and_nothing_refused_is_written(
    tmp_path: Path,
) -> None:
    with EmbeddedBroker(log_file=tmp_path / "broker.log") as broker:
        assert broker.process is not None
        settings = settings_for(broker, tmp_path, partitions=2)
        await ensure_topics(settings)
        train(settings, data_location=str(write_rows(tmp_path / "a.csv", synthetic_rows())))
        group = f"classifier-{uuid.uuid4().hex[:8]}"
        env = service_env(
            settings,
            TAGSTREAM_INGEST_API_KEYS=",".join(KEYS),
            TAGSTREAM_CLASSIFIER_GROUP_ID=group,
            **LIMITS,
        )

        def process(name: str) -> ServiceProcess:
            p = port()
            return ServiceProcess(
                name, {**env, f"TAGSTREAM_{name.upper()}_PORT": p}, int(p), tmp_path
            )

        ingest, classifier = process("ingest"), process("classifier")
        ledger = Ledger()
        with running(ingest.start("/readyz"), classifier.start("/readyz")):
            async with httpx.AsyncClient(base_url=ingest.url, timeout=90) as http:
                # 1. one key over its rate: its burst passes, the next batch is 429
                a = KEYS[0]
                assert await ledger.post(http, a, BATCH) == 202
                assert await ledger.post(http, a, BATCH) == 202
                assert await ledger.post(http, a, BATCH) == 429
                assert await ledger.post(http, KEYS[1], 1) == 202  # another key's own bucket

                # 2. the broker paused: two batches wait for their acknowledgements and
                # fill the bound; the next requests are refused at once meanwhile
                os.kill(broker.process.pid, signal.SIGSTOP)
                try:
                    held = [asyncio.create_task(ledger.post(http, key, BATCH)) for key in KEYS[2:]]
                    await eventually(
                        lambda: in_flight(http), lambda n: n >= MAX_IN_FLIGHT, within=30
                    )
                    assert await ledger.post(http, KEYS[1], 1) == 503
                    assert await ledger.post(http, KEYS[1], BATCH) == 503
                    assert not any(task.done() for task in held)
                finally:
                    os.kill(broker.process.pid, signal.SIGCONT)
                assert await asyncio.gather(*held) == [202, 202]

                # 3. a burst of concurrent singles and batches from every key
                burst = [
                    ledger.post(http, KEYS[n % len(KEYS)], 1 if n % 3 else BATCH)
                    for n in range(120)
                ]
                await asyncio.gather(*burst)

            accepted = ledger.accepted

            async def decided() -> set[str]:
                values = await read_all(settings, settings.topic_classified, within=60)
                return {Classification.decode(v).item_id for v in values}

            decisions = await eventually(decided, lambda ids: ids >= accepted, within=120)
            behind = await eventually(
                lambda: committed_behind(settings, {group: (settings.topic_raw,)}),
                lambda n: n <= 0,
                within=60,
            )
            raw = [ContentItem.decode(v) for v in await read_all(settings, settings.topic_raw)]

    print(  # the figures docs/reliability.md reports
        f"\noverload: statuses {dict(ledger.statuses)}, refusals {dict(ledger.reasons)},"
        f" {len(accepted)} items accepted, {len(raw)} on content.raw,"
        f" {len(decisions)} decided, classifier group {behind} behind"
    )
    assert ledger.statuses[429] >= 2
    assert ledger.statuses[503] >= 2
    assert {item.item_id for item in raw} == accepted  # every 202 written, nothing else
    assert not {item.title for item in raw} & ledger.refused_titles
    assert decisions >= accepted
    assert behind <= 0
