"""``tagstream topics`` against the real embedded broker, configured only by environment."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from shared.kafka import Output, create_producer
from shared.kafka.batch import produce_all
from shared.kafka.topics import topic_names
from shared.settings import Settings
from tagstream.cli.main import app

pytestmark = pytest.mark.kafka


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment a user would set to point the CLI at the test's broker and topics."""
    names = ("raw", "classified", "review", "feedback", "models", "dlq", "shadow")
    return {
        "TAGSTREAM_ENVIRONMENT": "test",
        "TAGSTREAM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "TAGSTREAM_KAFKA_PARTITIONS": str(settings.kafka_partitions),
        "COLUMNS": "200",
        **{f"TAGSTREAM_TOPIC_{n.upper()}": getattr(settings, f"topic_{n}") for n in names},
    }


async def invoke(settings: Settings, *args: str) -> Result:
    """Run ``tagstream ARGS`` in-process; in a thread, as the command runs its own loop."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, list(args), env=cli_env(settings))


async def produce(settings: Settings, outputs: list[Output]) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        await produce_all(producer, outputs)
    finally:
        await producer.stop()


def lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_tail_prints_every_record_as_a_json_line(topics: Settings) -> None:
    topic = topics.topic_classified
    records = [Output(topic, f"item-{i}".encode(), json.dumps({"n": i}).encode()) for i in range(6)]
    records.append(Output(topic, None, b"not json \xff"))
    await produce(topics, records)

    printed = lines(
        await invoke(topics, "topics", "tail", topic, "--from-beginning", "--limit", "7")
    )

    assert len(printed) == 7
    assert all(
        set(p) == {"topic", "partition", "offset", "timestamp", "key", "value"} for p in printed
    )
    assert len({(p["partition"], p["offset"]) for p in printed}) == 7
    assert {p["topic"] for p in printed} == {topic}
    by_key = {p["key"]: p["value"] for p in printed}
    assert by_key == {**{f"item-{i}": {"n": i} for i in range(6)}, None: "not json \\xff"}


async def test_tail_stops_at_the_limit_and_starts_at_the_end_by_default(topics: Settings) -> None:
    topic = topics.topic_raw
    await produce(topics, [Output(topic, b"k", b'{"a": %d}' % i) for i in range(5)])

    assert (
        len(
            lines(await invoke(topics, "topics", "tail", topic, "--from-beginning", "--limit", "2"))
        )
        == 2
    )
    # without --from-beginning only new records are shown: none arrive within the timeout
    assert lines(await invoke(topics, "topics", "tail", topic, "--timeout", "0.5")) == []


async def test_tail_of_a_missing_topic_is_an_error_and_does_not_create_it(
    topics: Settings,
) -> None:
    result = await invoke(topics, "topics", "tail", "no.such.topic.here", "--timeout", "0.1")
    assert result.exit_code == 1
    assert "does not exist" in result.stderr
    listed = await invoke(topics, "topics", "list", "--all")
    assert "no.such.topic.here" not in listed.stdout


async def test_create_then_list(kafka_settings: Settings) -> None:
    created = await invoke(kafka_settings, "topics", "create")
    assert created.exit_code == 0, created.output
    assert "7 created" in created.stdout
    again = await invoke(kafka_settings, "topics", "create")
    assert "0 created, 7 already there" in again.stdout

    listed = await invoke(kafka_settings, "topics", "list")
    assert listed.exit_code == 0, listed.output
    for topic in topic_names(kafka_settings):
        row = next(line for line in listed.stdout.splitlines() if topic in line)
        assert "│ 4 " in row
