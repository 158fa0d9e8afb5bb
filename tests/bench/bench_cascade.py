"""The cascade's speed: stage 2 on its own, the classifier's logic on the dataset's natural
mix with the cascade on and off, and ``model predict``'s engine on 15,000 rows.

    python -m tests.bench.bench_cascade [--out DIR] [--rows 15000] [--items 5000]

Trains the default model (with the real encoder, unless TAGSTREAM_ENCODER_DIR says
otherwise) on the dataset into a temporary registry, then times, in this process:
stage 2 alone (``Stage2.predict_proba`` over every dataset text, 1 and 2 threads);
``classify_batch`` over ``--items`` dataset items in batches of 512 with the cascade on
and off; ``score_rows`` (the engine of ``tagstream model predict``) over ``--rows`` rows
with the cascade on and off. Writes ``cascade.json`` and ``cascade.md``; never asserts.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from services.classifier.model import CascadeOptions, load_serving
from services.classifier.service import Routing, classify_batch
from shared.kafka.batch import Record
from shared.messages import ContentItem
from shared.ml.data import load_dataset
from shared.ml.training import train
from shared.registry import ModelRegistry
from shared.serving.cascade import load_stage2
from shared.serving.scoring import load_onnx_tagger, score_rows
from shared.settings import Settings
from tests.fixtures.data import data_location
from tests.fixtures.db import migrated
from tests.services.classifier.conftest import record

BATCH = 512


def _records(items: list[Any], n: int) -> list[Record]:
    now = datetime.now(UTC)
    out = []
    for k in range(n):
        source = items[k % len(items)]
        message = ContentItem(
            item_id=uuid.uuid4().hex, title=source.title, description=source.description,
            url="https://example.com", received_at=now,
        )  # fmt: skip
        out.append(record(message.encode(), offset=k))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--rows", type=int, default=15_000)
    parser.add_argument("--items", type=int, default=5_000)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    figures: dict[str, Any] = {"machine": platform.platform(), "cpus": __import__("os").cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            environment="test",
            registry_dir=Path(tmp) / "registry",
            database_url=migrated(f"sqlite:///{Path(tmp) / 'db.sqlite'}"),
        )
        location = data_location()
        started = time.perf_counter()
        version = train(settings, data_location=location).version
        figures["train_seconds"] = time.perf_counter() - started
        items, _ = load_dataset(location, settings.approved_tags)
        texts = [i.text for i in items]
        with ModelRegistry.open(settings) as registry:
            for threads in (1, 2):
                stage2 = load_stage2(registry, version, threads=threads)
                stage2.predict_proba(texts[:20])
                started = time.perf_counter()
                stage2.predict_proba(texts)
                figures[f"stage2_items_per_s_{threads}_threads"] = len(texts) / (
                    time.perf_counter() - started
                )
            routing = Routing.from_settings(settings)
            records = _records(items, args.items)
            for enabled in (False, True):
                serving = load_serving(registry, None, CascadeOptions(enabled=enabled))
                assert serving is not None
                started, stage2_items = time.perf_counter(), 0
                for start in range(0, len(records), BATCH):
                    result = classify_batch(records[start : start + BATCH], serving, routing)
                    stage2_items += sum(m.stage2_items for m in result.models)
                seconds = time.perf_counter() - started
                key = "cascade_on" if enabled else "cascade_off"
                figures[f"classifier_items_per_s_{key}"] = len(records) / seconds
                figures[f"classifier_stage2_share_{key}"] = stage2_items / len(records)
            rows = [
                {"id": str(k), "title": items[k % len(items)].title,
                 "description": items[k % len(items)].description}
                for k in range(args.rows)
            ]  # fmt: skip
            tagger = load_onnx_tagger(registry, version)
            for enabled in (False, True):
                stage2 = load_stage2(registry, version) if enabled else None
                started = time.perf_counter()
                for _ in score_rows(rows, tagger, version, settings, stage2):
                    pass
                key = "cascade_on" if enabled else "cascade_off"
                figures[f"predict_{args.rows}_rows_seconds_{key}"] = time.perf_counter() - started
    on = figures[f"predict_{args.rows}_rows_seconds_cascade_on"]
    off = figures[f"predict_{args.rows}_rows_seconds_cascade_off"]
    figures["predict_ratio_on_over_off"] = on / off
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cascade.json").write_text(json.dumps(figures, indent=2))
    lines = ["| figure | value |", "|---|---|"]
    lines += [
        f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |"
        for k, v in figures.items()
    ]
    (args.out / "cascade.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
