"""The people around the system, simulated over the same HTTP APIs real ones use.

* the scraper posts the stream to ingest (``POST /v1/items``) in time order at a set pace;
* reviewers work the review queue as the browser does (``POST /v1/review/claim``, then
  ``POST /v1/review/items/{id}/label``), answering from the dataset's label with an error
  rate and a speed;
* end users report a share of the wrong auto-accepted tags (``POST /v1/reports``).

The model's decisions are read from ``content.classified`` (a watcher without a consumer
group, as ``tagstream topics tail`` reads), which is also how end users see the tags.
Every random draw is seeded by the run's seed and the post's id, so the loop run and the
control run meet the same reviewers' mistakes and the same reporting users.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from shared.settings import Settings
from tagstream.cli.topics import assigned_consumer
from tagstream.demo.stream import Post

log = structlog.get_logger(__name__)

MODEL_ROUTES = ("auto", "review")


@dataclass(frozen=True, slots=True)
class Decision:
    """The model's first decision on an item, as read from ``content.classified``."""

    route: str
    tag: str
    predicted_tag: str | None
    model_version: str
    role: str | None


@dataclass
class Tally:
    """What one run's actors did and saw; the report is built from it."""

    item_ids: dict[int, str] = field(default_factory=dict)
    """Position in the replay -> the item id ingest answered (accepted posts only)."""
    duplicates: int = 0
    rejected: int = 0
    decisions: dict[str, Decision] = field(default_factory=dict)
    human_decisions: int = 0
    labels: int = 0
    wrong_labels: int = 0
    reports: int = 0
    posts_by_item: dict[str, Post] = field(default_factory=dict)
    stream_started_at: str | None = None
    stream_ended_at: str | None = None
    """UTC ISO times of the first and the last post (the replay's span)."""

    def decided(self) -> int:
        return sum(1 for item in self.item_ids.values() if item in self.decisions)


def draw(seed: int, *parts: object) -> random.Random:
    """A generator seeded by the run's seed and ``parts``: the same draw in both runs."""
    return random.Random("/".join(str(p) for p in (seed, *parts)))  # simulation, not secrets  # nosec B311


async def post_with_retry(
    client: httpx.AsyncClient, url: str, *, attempts: int = 20, **kwargs: Any
) -> httpx.Response:
    """POST, waiting out 429 and 503 (Retry-After, at most a few seconds) and lost connections."""
    for attempt in range(attempts):
        try:
            response = await client.post(url, **kwargs)
        except httpx.TransportError:
            await asyncio.sleep(min(0.2 * 2**attempt, 3.0))
            continue
        if response.status_code not in (429, 503):
            return response
        retry = response.headers.get("Retry-After", "1")
        await asyncio.sleep(min(float(retry) if retry.isdigit() else 1.0, 5.0))
    raise RuntimeError(f"{url} kept refusing after {attempts} attempts")


async def replay(
    client: httpx.AsyncClient,
    ingest_url: str,
    key: str,
    posts: Sequence[Post],
    tally: Tally,
    items_per_second: float,
    on_post: Any = None,
) -> None:
    """Post every post in order, the ``n``-th at ``n / items_per_second`` seconds."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tally.stream_started_at = utc_now()
    headers = {"Authorization": f"Bearer {key}"}
    for index, post in enumerate(posts):
        delay = start + index / items_per_second - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        body = {
            "title": post.title,
            "description": post.description or None,
            "source": "demo-scraper",
            "external_id": post.id,
            "created_at": post.created_on.replace(" ", "T") if post.created_on else None,
        }
        response = await post_with_retry(
            client, f"{ingest_url}/v1/items", json=body, headers=headers
        )
        if response.status_code == 202:
            answer = response.json()
            if answer["status"] == "accepted":
                tally.item_ids[index] = answer["id"]
                tally.posts_by_item[answer["id"]] = post
            else:
                tally.duplicates += 1
        else:
            tally.rejected += 1
            log.warning("demo_post_rejected", status=response.status_code, body=response.text)
        if on_post is not None:
            on_post()
    tally.stream_ended_at = utc_now()


def utc_now() -> str:
    return datetime.now(UTC).isoformat()


async def watch_decisions(
    settings: Settings, tally: Tally, reports: asyncio.Queue[tuple[str, Post]], share: float
) -> None:
    """Record the first model decision of every item; queue the wrong auto-accepted tags
    that an end user reports. Runs until cancelled."""
    consumer, tps = await assigned_consumer(settings, settings.topic_classified)
    try:
        await consumer.seek_to_beginning(*tps)
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for record in (r for part in batch.values() for r in part):
                if record.value is None:
                    continue
                value = json.loads(record.value)
                item_id = str(value.get("item_id"))
                if value.get("route") not in MODEL_ROUTES:
                    tally.human_decisions += 1
                    continue
                if item_id in tally.decisions:
                    continue
                decision = Decision(
                    route=value["route"],
                    tag=value["tag"],
                    predicted_tag=value.get("predicted_tag"),
                    model_version=value["model_version"],
                    role=value.get("role"),
                )
                tally.decisions[item_id] = decision
                post = tally.posts_by_item.get(item_id)
                if (
                    post is not None
                    and decision.route == "auto"
                    and decision.tag != post.tag
                    and draw(settings.seed, "report", post.id).random() < share
                ):
                    reports.put_nowait((item_id, post))
    finally:
        await consumer.stop()


async def end_users(
    client: httpx.AsyncClient,
    feedback_url: str,
    key: str,
    reports: asyncio.Queue[tuple[str, Post]],
    tally: Tally,
    *,
    seed: int,
    users: int,
) -> None:
    """Send the queued reports, each from one of ``users`` end users. Runs until cancelled."""
    headers = {"Authorization": f"Bearer {key}"}
    while True:
        item_id, post = await reports.get()
        user = draw(seed, "user", post.id).randrange(users)
        body = {
            "item_id": item_id,
            "suggested_tag": post.tag,
            "end_user_id": f"demo-user-{user:03d}",
            "comment": "this tag looks wrong to me",
        }
        response = await post_with_retry(
            client, f"{feedback_url}/v1/reports", json=body, headers=headers
        )
        if response.status_code == 202:
            tally.reports += 1
        else:
            log.warning("demo_report_refused", status=response.status_code, body=response.text)
        reports.task_done()


@dataclass
class Reviewer:
    """One simulated reviewer: an account's token, an error rate and a pace."""

    name: str
    token: str
    error_rate: float
    seconds_per_item: float
    tags: tuple[str, ...]
    seed: int
    idle: bool = False

    def answer(self, post: Post) -> str:
        """The dataset's tag, or (with ``error_rate``) another approved tag."""
        rng = draw(self.seed, "review", post.id)
        if rng.random() >= self.error_rate:
            return post.tag
        return rng.choice([t for t in self.tags if t != post.tag] or [post.tag])

    async def work(self, client: httpx.AsyncClient, review_url: str, tally: Tally) -> None:
        """Claim, think, label; runs until cancelled. ``idle`` while the queue is empty."""
        headers = {"Authorization": f"Bearer {self.token}"}
        while True:
            response = await post_with_retry(
                client, f"{review_url}/v1/review/claim", headers=headers
            )
            if response.status_code == 204:
                self.idle = True
                await asyncio.sleep(0.3)
                continue
            response.raise_for_status()
            self.idle = False
            claimed = response.json()
            item_id = claimed["item_id"]
            post = tally.posts_by_item.get(item_id)
            if post is None:  # not (yet) known as ours: leave it to the next claim
                await asyncio.sleep(0.2)
                await client.post(f"{review_url}/v1/review/items/{item_id}/skip", headers=headers)
                continue
            tag = self.answer(post)
            await asyncio.sleep(self.seconds_per_item)
            labelled = await post_with_retry(
                client,
                f"{review_url}/v1/review/items/{item_id}/label",
                json={"tag": tag},
                headers=headers,
            )
            if labelled.status_code == 200:
                tally.labels += 1
                tally.wrong_labels += tag != post.tag
            else:
                log.warning("demo_label_refused", status=labelled.status_code, body=labelled.text)
