"""The contract, on the real review process and broker, with a crash in the middle.

"A reviewer's label of item X produces, within seconds, a message on content.classified
with item_id X, route "human", tag the label, and model_version." The process is killed
(SIGKILL) after a label committed and before the relay sent it: the restarted process
sends it, once; nothing is lost or invented. Both databases.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from shared.kafka import Output, create_producer
from shared.kafka.batch import produce_all
from shared.messages import Classification
from shared.settings import Settings
from tests.fixtures.kafka import read_all, read_topic
from tests.fixtures.services import ServiceProcess, port, reviewer_token, running, service_env
from tests.services.review.conftest import request

pytestmark = [pytest.mark.kafka, pytest.mark.slow]  # two process starts per backend


def review_process(settings: Settings, tmp_path: Path, poll_seconds: float) -> ServiceProcess:
    review_port = port()
    env = service_env(
        settings,
        TAGSTREAM_REVIEW_PORT=review_port,
        TAGSTREAM_REVIEW_GROUP_ID=f"review-{settings.topic_review}",
        TAGSTREAM_REVIEW_OUTBOX_POLL_SECONDS=str(poll_seconds),
        TAGSTREAM_REVIEW_GAUGE_REFRESH_SECONDS="0.2",
    )
    return ServiceProcess("review", env, int(review_port), tmp_path)


async def metric(service: ServiceProcess, line_start: str) -> float:
    async with httpx.AsyncClient(base_url=service.url, timeout=5) as http:
        text = (await http.get("/metrics")).text
    found = [line.split()[-1] for line in text.splitlines() if line.startswith(line_start)]
    return sum(float(v) for v in found)


async def until(service: ServiceProcess, line_start: str, value: float) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while await metric(service, line_start) != value:
        assert asyncio.get_running_loop().time() < deadline, f"{line_start} never {value}"
        await asyncio.sleep(0.1)


async def label_next(service: ServiceProcess, token: str, item_id: str, tag: str) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=10) as http:
        claimed = await http.post("/v1/review/claim")
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["item_id"] == item_id
        labeled = await http.post(f"/v1/review/items/{item_id}/label", json={"tag": tag})
        assert labeled.status_code == 200, labeled.text
        return str(labeled.json()["label_id"])


async def test_a_label_survives_a_crash_and_reaches_content_classified_once(
    topics: Settings, migrated_database_url: str, tmp_path: Path
) -> None:
    settings = topics.model_copy(update={"database_url": migrated_database_url})
    token = reviewer_token(settings.database_url)
    received = datetime.now(UTC) - timedelta(minutes=3)
    requests = [
        request("p1", 0.2, received_at=received, requested_at=received),
        request("p2", 0.95, reason="audit", received_at=received, requested_at=received),
    ]
    producer = create_producer(settings)
    await producer.start()
    try:
        await produce_all(
            producer,
            [Output(settings.topic_review, r.item_id.encode(), r.encode()) for r in requests],
        )
    finally:
        await producer.stop()

    # A relay that polls once a minute: the label commits, and the process dies before
    # the relay looks again.
    first = review_process(settings, tmp_path, poll_seconds=60)
    with running(first.start("/readyz")):
        await until(first, "tagstream_review_queue_depth", 2)
        crashed_label = await label_next(first, token, "p1", "other")
        assert await read_all(settings, settings.topic_classified) == []
        first.kill()

    second = review_process(settings, tmp_path, poll_seconds=0.2)
    # /healthz, not /readyz: the dead member holds the group until its session times out,
    # and the items are stored already; the relay runs from start-up.
    with running(second.start("/healthz")):
        [value] = await read_topic(settings, settings.topic_classified, expect=1, within=10)
        p1 = Classification.decode(value)
        assert (p1.item_id, p1.route, p1.tag, p1.model_version) == ("p1", "human", "other", "v1")
        assert p1.label_id == crashed_label
        audit_label = await label_next(second, token, "p2", "computer-vision")
        await until(second, "tagstream_review_human_decisions_total", 2)
        decisions = [
            Classification.decode(v) for v in await read_all(settings, settings.topic_classified)
        ]

    assert [(d.item_id, d.tag, d.label_id) for d in decisions] in (
        [("p1", "other", crashed_label), ("p2", "computer-vision", audit_label)],
        [("p2", "computer-vision", audit_label), ("p1", "other", crashed_label)],
    )
    p2 = next(d for d in decisions if d.item_id == "p2")
    assert (p2.route, p2.predicted_tag, p2.model_version) == ("human", "mlops", "v1")
