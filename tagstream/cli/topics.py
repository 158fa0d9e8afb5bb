"""``tagstream topics``: create, list and tail the Kafka topics.

Reading is by partition assignment without a consumer group, so watching a topic never
joins, rebalances or commits for any service's group.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from rich.table import Table

from shared.kafka import client_options, ensure_topics
from shared.kafka.topics import topic_names
from shared.settings import Settings
from tagstream.cli.common import err, load_settings, out

app = typer.Typer(help="Kafka topics: create, list, tail.", no_args_is_help=True)


class TopicNotFound(Exception):
    pass


async def topic_partitions(settings: Settings) -> dict[str, list[int]]:
    """Every topic on the broker with its partition ids.

    Asks for all topics: naming one in a metadata request makes brokers with
    auto-creation (the embedded one) create it, and a typo must not make a topic.
    """
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return {t["topic"]: sorted(p["partition"] for p in t["partitions"]) for t in described}


async def assigned_consumer(
    settings: Settings, topic: str, **options: Any
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started consumer assigned every partition of ``topic`` (which must exist)."""
    partitions = (await topic_partitions(settings)).get(topic)
    if not partitions:
        raise TopicNotFound(topic)
    # short long-polls: after a seek, a fetch in flight for the old position is waited out
    options = {"fetch_max_wait_ms": 100, **options}
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False, **options)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    return consumer, tps


async def end_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], within: float = 5.0
) -> dict[TopicPartition, int]:
    """The offset the next record of each assigned partition will get. Moves positions.

    ListOffsets is exact on Apache Kafka, but the embedded broker answers it with the
    base offset of the partition's last record batch + 1: short of the end whenever
    that batch holds several records. The high watermark of a fetch response is exact
    on both, so fetch from there once and take the larger.
    """
    listed = await consumer.end_offsets(tps)
    begins = await consumer.beginning_offsets(tps)
    nonempty = [tp for tp in tps if listed[tp] > begins[tp]]
    for tp in nonempty:
        consumer.seek(tp, listed[tp] - 1)
    deadline = asyncio.get_running_loop().time() + within
    while pending := [tp for tp in nonempty if consumer.highwater(tp) is None]:
        if asyncio.get_running_loop().time() > deadline:
            break  # keep what ListOffsets said
        await consumer.getmany(*pending, timeout_ms=200)
    return {tp: max(listed[tp], consumer.highwater(tp) or 0) for tp in tps}


def record_line(record: ConsumerRecord[bytes, bytes]) -> str:
    """One JSON line: the value parsed as JSON when it is JSON, else as text."""
    value: Any = None
    if record.value is not None:
        try:
            value = json.loads(record.value)
        except (UnicodeDecodeError, json.JSONDecodeError):
            value = record.value.decode("utf-8", errors="backslashreplace")
    key = record.key.decode("utf-8", errors="backslashreplace") if record.key is not None else None
    return json.dumps(
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp,
            "key": key,
            "value": value,
        },
        ensure_ascii=False,
    )


async def tail(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool,
    limit: int | None,
    idle_timeout: float | None,
) -> int:
    consumer, tps = await assigned_consumer(settings, topic)
    printed = 0
    try:
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            for tp, end in (await end_offsets(consumer, tps)).items():
                consumer.seek(tp, end)
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while limit is None or printed < limit:
            batch = await consumer.getmany(timeout_ms=200)
            records = [r for part in batch.values() for r in part]
            if not records:
                if idle_timeout is not None and loop.time() - idle_since >= idle_timeout:
                    break
                continue
            idle_since = loop.time()
            for record in records[: None if limit is None else limit - printed]:
                print(record_line(record), flush=True)
                printed += 1
    finally:
        await consumer.stop()
    return printed


def run_kafka(coro: Any, settings: Settings) -> Any:
    """Run ``coro``; a broker that cannot be reached is a one-line error, not a traceback."""
    try:
        return asyncio.run(coro)
    except TopicNotFound as exc:
        err.print(f"[red]error:[/red] topic {exc} does not exist (see `tagstream topics list`)")
        raise typer.Exit(1) from exc
    except (KafkaError, OSError) as exc:
        err.print(
            f"[red]error:[/red] Kafka at {settings.kafka_bootstrap_servers} failed: "
            f"{exc!r} (is `tagstream up` running?)",
            highlight=False,
        )
        raise typer.Exit(1) from exc


@app.command("tail")
def tail_cmd(
    topic: Annotated[str, typer.Argument(help="Topic name, e.g. content.classified.")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest record, not the end.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Stop after printing this many records.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0, help="Stop once no record has arrived for this many seconds."),
    ] = None,
) -> None:
    """Print TOPIC's records as JSON lines: topic, partition, offset, timestamp, key, value.

    A value that is JSON is printed parsed, anything else as a string. Reads every
    partition without a consumer group, so it never disturbs the services. Follows the
    topic until Ctrl-C, --limit or --timeout.
    """
    settings = load_settings()
    try:
        printed = run_kafka(
            tail(
                settings,
                topic,
                from_beginning=from_beginning,
                limit=limit,
                idle_timeout=timeout,
            ),
            settings,
        )
    except KeyboardInterrupt:
        return
    except BrokenPipeError:
        # `tagstream topics tail … | head`: the reader left, which is not an error; point
        # stdout at /dev/null so the interpreter's final flush does not complain either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    err.print(f"{printed} record(s)")


@app.command("create")
def create_cmd() -> None:
    """Create tagstream's topics that do not exist yet (TAGSTREAM_KAFKA_PARTITIONS each)."""
    settings = load_settings()
    created: list[str] = run_kafka(ensure_topics(settings), settings)
    names = topic_names(settings)
    for topic in names:
        state = "created" if topic in created else "exists"
        out.print(f"{topic:<24} {state}", highlight=False)
    out.print(f"{len(created)} created, {len(names) - len(created)} already there")


async def _offsets(settings: Settings) -> dict[str, tuple[int, int]]:
    """Per topic: partition count and number of records currently retained."""
    partitions = await topic_partitions(settings)
    tps = [TopicPartition(t, p) for t, ps in partitions.items() for p in ps]
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        end = await end_offsets(consumer, tps)
    finally:
        await consumer.stop()
    return {
        topic: (len(ps), sum(end[tp] - begin[tp] for tp in tps if tp.topic == topic))
        for topic, ps in partitions.items()
    }


@app.command("list")
def list_cmd(
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list topics tagstream does not use.")
    ] = False,
) -> None:
    """tagstream's topics: present or missing, partitions and records retained."""
    settings = load_settings()
    found: dict[str, tuple[int, int]] = run_kafka(_offsets(settings), settings)
    table = Table("topic", "partitions", "records", title=settings.kafka_bootstrap_servers)
    names = list(topic_names(settings))
    if show_all:
        names += sorted(set(found) - set(names))
    for name in names:
        if name in found:
            count, records = found[name]
            table.add_row(name, str(count), str(records))
        else:
            table.add_row(name, "[yellow]missing[/yellow]", "-")
    out.print(table)
