"""Poison records produced straight to every topic a service consumes, against the real
broker and the real classifier, review and feedback processes.

Each kind of poison (bytes that are not UTF-8, broken JSON, wrong types, an unknown schema
version, an oversized value) lands in the dead-letter topic once per consuming stage, with
its origin topic, partition and offset and a bounded error kind; a valid message with an
unknown optional field is decoded, not dead-lettered. Every group's committed offsets
reach the end of every partition: the poison is skipped, never redelivered in a loop.
``models.events`` is read without a group, as notifications: poison there is skipped.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from shared.kafka import create_producer
from shared.messages import (
    Classification,
    ContentItem,
    DeadLetter,
    FeedbackLabel,
    MessageError,
    MessageErrorKind,
    ReviewRequest,
)
from shared.messages.base import MAX_MESSAGE_BYTES, Message
from shared.ml.training import train
from shared.settings import Settings
from tests.fixtures.data import synthetic_rows, write_rows
from tests.fixtures.kafka import committed_behind, eventually, read_all, read_topic
from tests.fixtures.services import ServiceProcess, port, running, service_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.chaos]

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def valid(topic_kind: str, item_id: str) -> Message:
    """A well-formed message of the topic's type."""
    match topic_kind:
        case "raw":
            return ContentItem(item_id=item_id, title="graph neural networks", received_at=NOW)
        case "classified" | "shadow":
            return Classification(
                item_id=item_id,
                tag="other",
                route="auto",
                confidence=0.9,
                predicted_tag="other",
                probabilities={"other": 0.9},
                model_version="v0",
                latency_ms=1.0,
                decided_at=NOW,
            )
        case "review":
            return ReviewRequest(
                item_id=item_id,
                title="graph neural networks",
                reason="low_confidence",
                confidence=0.3,
                probabilities={"other": 0.3},
                model_version="v0",
                received_at=NOW,
                requested_at=NOW,
            )
        case "feedback":
            return FeedbackLabel(
                label_id=uuid.uuid4().hex,
                item_id=item_id,
                tag="other",
                source="reviewer",
                labeler="alice",
                labeled_at=NOW,
            )
    raise AssertionError(topic_kind)


def poisons(topic_kind: str) -> dict[str, tuple[bytes, MessageErrorKind | None]]:
    """name -> (value, the error kind expected in its dead letter; None: decoded)."""
    base = json.loads(valid(topic_kind, f"{topic_kind}-ok").encode())

    def variant(**changes: object) -> bytes:
        return json.dumps({**base, **changes}).encode()

    big = "a" * (MAX_MESSAGE_BYTES + 10_000)
    return {
        "non_utf8": (b"\xff\xfe\xfa not utf-8 \x80", MessageErrorKind.INVALID_JSON),
        "broken_json": (b'{"schema_version": 1, "item_id": ', MessageErrorKind.INVALID_JSON),
        "not_an_object": (b"[1, 2, 3]", MessageErrorKind.NOT_AN_OBJECT),
        "wrong_types": (variant(item_id=["a", "list"]), MessageErrorKind.INVALID_FIELD),
        "unknown_version": (variant(schema_version=99), MessageErrorKind.UNSUPPORTED_VERSION),
        "oversized": (variant(item_id="big", comment=big), MessageErrorKind.OVERSIZED),
        "unknown_optional_field": (
            variant(added_in_a_later_release={"nested": [1, 2]}),
            None,
        ),
    }


@dataclass(frozen=True)
class Sent:
    topic: str
    partition: int
    offset: int
    poison: str
    kind: MessageErrorKind | None


@dataclass
class Stack:
    settings: Settings
    services: list[ServiceProcess]
    groups: dict[str, tuple[str, ...]]  # group id -> topics it consumes
    stages: dict[str, tuple[str, ...]]  # topic -> stages that dead-letter its records


@pytest.fixture
def stack(topics: Settings, tmp_path: Path) -> Iterator[Stack]:
    settings = topics
    train(settings, data_location=str(write_rows(tmp_path / "a.csv", synthetic_rows())))
    suffix = uuid.uuid4().hex[:8]
    groups = {
        "classifier": f"classifier-{suffix}",
        "review": f"review-{suffix}",
        "feedback": f"feedback-{suffix}",
    }
    env = service_env(
        settings,
        **{f"TAGSTREAM_{name.upper()}_GROUP_ID": group for name, group in groups.items()},
        TAGSTREAM_FEEDBACK_API_KEYS="feedback-key-for-tests",
    )
    services = [
        ServiceProcess(name, {**env, f"TAGSTREAM_{name.upper()}_PORT": p}, int(p), tmp_path)
        for name, p in (("classifier", port()), ("review", port()), ("feedback", port()))
    ]
    s = settings
    with running(*services):
        for service in services:
            service.start("/readyz")
        yield Stack(
            settings,
            services,
            groups={
                groups["classifier"]: (s.topic_raw,),
                groups["review"]: (s.topic_review,),
                groups["feedback"]: (
                    s.topic_feedback,
                    s.topic_classified,
                    s.topic_shadow,
                    s.topic_raw,
                ),
            },
            stages={
                s.topic_raw: ("classifier.decode", "feedback.decode"),
                s.topic_review: ("review.consume",),
                s.topic_feedback: ("feedback.decode",),
                s.topic_classified: ("feedback.decode",),
                s.topic_shadow: ("feedback.decode",),
            },
        )


async def produce_poison(settings: Settings) -> list[Sent]:
    kinds = {
        settings.topic_raw: "raw",
        settings.topic_classified: "classified",
        settings.topic_shadow: "shadow",
        settings.topic_review: "review",
        settings.topic_feedback: "feedback",
    }
    producer = create_producer(settings, max_request_size=2 * MAX_MESSAGE_BYTES)
    await producer.start()
    sent: list[Sent] = []
    try:
        # models.events are notifications read without a group (the registry is the
        # truth): poison there is skipped by every reader, never dead-lettered
        for value in (b"\xff\xfe", b'{"event": ', b'{"schema_version": 99}'):
            await (await producer.send(settings.topic_models, value, key=b"poison"))
        for topic, kind in kinds.items():
            for name, (value, error_kind) in poisons(kind).items():
                key = f"{name}-{uuid.uuid4().hex[:6]}".encode()
                meta = await (await producer.send(topic, value, key=key))
                sent.append(Sent(topic, meta.partition, meta.offset, name, error_kind))
    finally:
        await producer.stop()
    return sent


async def test_poison_on_every_consumed_topic_is_dead_lettered_once_and_skipped(
    stack: Stack,
) -> None:
    settings = stack.settings
    sent = await produce_poison(settings)
    behind = await eventually(
        lambda: committed_behind(settings, stack.groups), lambda n: n == 0, within=90
    )
    assert behind == 0, "a consumer group did not commit past the poison"

    letters = [DeadLetter.decode(v) for v in await read_all(settings, settings.topic_dlq)]
    by_origin = Counter((d.stage, d.topic, d.partition, d.offset) for d in letters)
    assert set(by_origin.values()) == {1}, f"dead-lettered more than once: {by_origin}"
    found = {(d.stage, d.topic, d.partition, d.offset): d for d in letters}
    expected = {
        (stage, s.topic, s.partition, s.offset): s
        for s in sent
        for stage in stack.stages[s.topic]
        if s.kind is not None
    }
    assert set(found) == set(expected), {
        "missing": sorted(set(expected) - set(found)),
        "unexpected": sorted(set(found) - set(expected)),
    }
    for origin, letter in found.items():
        assert letter.error_kind == expected[origin].kind, (origin, letter.error)
        assert letter.error
    # the unknown optional field was decoded: the classifier decided that item
    decisions = await read_topic(settings, settings.topic_classified, expect=8, within=30)
    decided = set()
    for value in decisions:
        with contextlib.suppress(MessageError):  # the poison produced there
            decided.add(Classification.decode(value).item_id)
    assert "raw-ok" in decided
    for service in stack.services:  # all still consuming and ready
        async with httpx.AsyncClient() as client:
            ready = await client.get(service.url + "/readyz")
        assert ready.status_code == 200, (service.name, ready.text)
