"""``tagstream dlq replay`` against the real embedded broker: once per entry, commit after ack."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.kafka import Output
from shared.messages import DeadLetter
from shared.settings import Settings
from tagstream.cli.topics import assigned_consumer, end_offsets
from tests.cli.test_topics_cli import invoke, produce

pytestmark = pytest.mark.kafka


def letter(
    settings: Settings, key: bytes, value: bytes, *, stage: str = "classifier.decode"
) -> Output:
    entry = DeadLetter(
        stage=stage,
        error="invalid title: field required",
        topic=settings.topic_raw,
        partition=0,
        offset=0,
        key_b64=DeadLetter.b64(key),
        value_b64=DeadLetter.b64(value) or "",
        failed_at=datetime.now(UTC),
    )
    return Output(settings.topic_dlq, key, entry.encode())


async def records(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record now on ``topic``, by partition and offset."""
    consumer, tps = await assigned_consumer(settings, topic)
    try:
        ends = await end_offsets(consumer, tps)
        await consumer.seek_to_beginning(*tps)
        found = []
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                fetched = await consumer.getmany(tp, timeout_ms=2000)
                found += [(r.key, r.value) for r in fetched.get(tp, [])]
        return found
    finally:
        await consumer.stop()


async def test_replay_moves_entries_back_exactly_once(topics: Settings) -> None:
    s = topics
    originals = [(f"item-{i}".encode(), b'{"title": "t%d"}' % i) for i in range(5)]
    await produce(s, [letter(s, k, v) for k, v in originals])
    await produce(s, [Output(s.topic_dlq, b"junk", b"not a dead letter")])

    dry = await invoke(s, "dlq", "replay", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "5 entries would replay; dry run" in dry.stdout
    assert await records(s, s.topic_raw) == []

    first = await invoke(s, "dlq", "replay")
    assert first.exit_code == 0, first.output
    assert "5 entries replayed" in first.stdout
    assert "not replayable" in first.stderr
    assert sorted(await records(s, s.topic_raw)) == sorted(originals)

    second = await invoke(s, "dlq", "replay")
    assert second.exit_code == 0, second.output
    assert "0 entries replayed" in second.stdout
    assert "not replayable" not in second.stderr  # the bad record was passed over for good
    assert len(await records(s, s.topic_raw)) == 5


async def test_stage_filter_leaves_other_entries_for_a_later_replay(topics: Settings) -> None:
    s = topics
    # one key: one partition, in this order
    stages = ["a", "a", "b", "a"]
    await produce(s, [letter(s, b"same", b"%d" % i, stage=st) for i, st in enumerate(stages)])

    only_a = await invoke(s, "dlq", "replay", "--stage", "a")
    assert "2 entries replayed" in only_a.stdout
    assert "stopped at offset 2 (stage 'b'); 2 entries left" in only_a.stderr
    assert [v for _, v in await records(s, s.topic_raw)] == [b"0", b"1"]

    limited = await invoke(s, "dlq", "replay", "--limit", "1")
    assert "1 entry replayed (--limit reached)" in limited.stdout

    rest = await invoke(s, "dlq", "replay")
    assert "1 entry replayed" in rest.stdout
    assert [v for _, v in await records(s, s.topic_raw)] == [b"0", b"1", b"2", b"3"]
