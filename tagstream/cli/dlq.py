"""``tagstream dlq``: re-submit dead-lettered records once the cause is fixed.

How a replay makes progress: it reads every DLQ partition by assignment, starting at the
offset committed for the consumer group ``tagstream-dlq-replay`` and stopping at the end
offset seen when it started (entries that fail again land after that end and wait for
the next replay, so a replay always terminates). Each entry's original key and value
are produced to its original topic; only once the broker has acknowledged them is the
DLQ offset committed. A crash in between replays those entries again next time
(at-least-once; consumers dedupe on item id), never loses them.

A committed offset is a single position per partition, so it can only move past entries
that were replayed or deliberately dropped (an entry that is not a valid DeadLetter, or
that names a topic tagstream does not use: both are reported). With ``--stage``, the
first entry of another stage stops its partition: it and everything after it in that
partition stay for a later replay. Apart from the reported entries, nothing is
committed without being replayed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from rich.table import Table

from shared.kafka import Output, create_producer
from shared.kafka.batch import produce_all
from shared.kafka.topics import topic_names
from shared.messages import DeadLetter, MessageError
from shared.settings import Settings
from tagstream.cli.common import err, load_settings, out
from tagstream.cli.topics import assigned_consumer, end_offsets, run_kafka

GROUP_ID = "tagstream-dlq-replay"
FETCH_TIMEOUT_MS = 2000
FETCH_MAX_RECORDS = 500

app = typer.Typer(help="Dead-letter queue: replay entries after a fix.", no_args_is_help=True)


@dataclass(frozen=True)
class Entry:
    partition: int
    offset: int
    letter: DeadLetter


@dataclass
class ReplayReport:
    replayed: Counter[tuple[str, str]] = field(default_factory=Counter)
    entries: list[Entry] = field(default_factory=list)
    #: (partition, offset, reason) of entries reported and dropped
    dropped: list[tuple[int, int, str]] = field(default_factory=list)
    #: partition -> (offset, entries left, stage) where --stage stopped it
    held: dict[int, tuple[int, int, str]] = field(default_factory=dict)
    limited: bool = False


async def replay(
    settings: Settings, *, limit: int | None, stage: str | None, dry_run: bool
) -> ReplayReport:
    """Replay the DLQ as described in the module docstring; ``dry_run`` writes nothing."""
    consumer, tps = await assigned_consumer(settings, settings.topic_dlq, group_id=GROUP_ID)
    producer = None if dry_run else create_producer(settings)
    report = ReplayReport()
    try:
        if producer is not None:
            await producer.start()
        ends = await end_offsets(consumer, tps)  # before anything is replayed
        begins = await consumer.beginning_offsets(tps)
        for tp in tps:
            if report.limited:
                break
            committed = await consumer.committed(tp)
            consumer.seek(tp, max(committed or 0, begins[tp]))
            await _replay_partition(
                consumer, producer, tp, ends[tp], settings, report, limit=limit, stage=stage
            )
    finally:
        if producer is not None:
            await producer.stop()
        await consumer.stop()
    return report


async def _replay_partition(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer | None,
    tp: TopicPartition,
    end: int,
    settings: Settings,
    report: ReplayReport,
    *,
    limit: int | None,
    stage: str | None,
) -> None:
    replayable = set(topic_names(settings)) - {settings.topic_dlq}
    while (position := await consumer.position(tp)) < end:
        fetched = await consumer.getmany(
            tp, timeout_ms=FETCH_TIMEOUT_MS, max_records=FETCH_MAX_RECORDS
        )
        records = fetched.get(tp, [])
        if not records:
            err.print(
                f"[yellow]warning:[/yellow] partition {tp.partition} gave no records "
                f"at offset {position} (end {end}); left for a later replay"
            )
            return
        outputs: list[Output] = []
        done = position  # the offset to commit: everything before it is handled
        stopped = False
        for record in records:
            if record.offset >= end:
                break
            try:
                letter = DeadLetter.decode(record.value)
            except MessageError as exc:
                report.dropped.append((tp.partition, record.offset, exc.reason))
                done = record.offset + 1
                continue
            if letter.topic not in replayable:
                reason = f"names topic {letter.topic!r}, not one of tagstream's topics"
                report.dropped.append((tp.partition, record.offset, reason))
                done = record.offset + 1
                continue
            if stage is not None and letter.stage != stage:
                report.held[tp.partition] = (record.offset, end - record.offset, letter.stage)
                stopped = True
                break
            if limit is not None and sum(report.replayed.values()) >= limit:
                report.limited = stopped = True
                break
            outputs.append(Output(letter.topic, letter.original_key, letter.original_value))
            report.replayed[(letter.topic, letter.stage)] += 1
            report.entries.append(Entry(tp.partition, record.offset, letter))
            done = record.offset + 1
        if producer is not None:
            await produce_all(producer, outputs)  # every record acknowledged (acks=all) ...
            if done > position:
                await consumer.commit({tp: done})  # ... before the DLQ moves past it
        if stopped:
            return


@app.command("replay")
def replay_cmd(
    limit: Annotated[
        int | None, typer.Option(min=1, help="Replay at most this many entries.")
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option(
            help="Replay only entries of this stage (e.g. classifier.decode). In each "
            "partition, the first entry of another stage stops the replay there; it and "
            "what follows stay for a later replay."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List what would be replayed; produce and commit nothing."),
    ] = False,
) -> None:
    """Re-submit DLQ entries to their original topic, each exactly once per replay group.

    Reads TAGSTREAM_TOPIC_DLQ from the offsets committed by the consumer group
    'tagstream-dlq-replay' up to the end seen at start, produces each entry's original
    key and value to its original topic, and commits the DLQ offset only after the
    broker acknowledged the re-produced records. Entries that are not valid dead letters,
    or that name a topic tagstream does not use, are reported and passed over. Run one
    replay at a time.
    """
    settings = load_settings()
    report: ReplayReport = run_kafka(
        replay(settings, limit=limit, stage=stage, dry_run=dry_run), settings
    )
    _print_report(report, dry_run=dry_run)


def _print_report(report: ReplayReport, *, dry_run: bool) -> None:
    if dry_run and report.entries:
        entries = Table("partition", "offset", "stage", "topic", "failed at", "error")
        for e in report.entries:
            entries.add_row(
                str(e.partition),
                str(e.offset),
                e.letter.stage,
                e.letter.topic,
                f"{e.letter.failed_at:%Y-%m-%d %H:%M:%S}",
                e.letter.error,
            )
        out.print(entries)
    for partition, offset, reason in report.dropped:
        err.print(
            f"[yellow]not replayable:[/yellow] partition {partition} offset {offset}: {reason}",
            highlight=False,
        )
    for partition, (offset, left, other) in sorted(report.held.items()):
        err.print(
            f"partition {partition}: stopped at offset {offset} (stage {other!r}); "
            f"{left} entr{'y' if left == 1 else 'ies'} left for a later replay",
            highlight=False,
        )
    verb = "would replay" if dry_run else "replayed"
    summary = Table("topic", "stage", verb)
    for (topic, stage), count in sorted(report.replayed.items()):
        summary.add_row(topic, stage, str(count))
    total = sum(report.replayed.values())
    if total:
        out.print(summary)
    note = " (--limit reached)" if report.limited else ""
    tail = "; dry run: nothing produced or committed" if dry_run else ""
    out.print(f"{total} entr{'y' if total == 1 else 'ies'} {verb}{note}{tail}", highlight=False)
