"""The whole demo: the loop run, the control run, and their report."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.console import err
from shared.ml.data import DataError
from tagstream.demo.html import write_html
from tagstream.demo.report import build_report, write_json
from tagstream.demo.run import run_both
from tagstream.demo.settings import DemoSettings
from tagstream.demo.stream import load_posts, split_stream
from tagstream.demo.system import DemoError

RUNS = ("loop", "control")


class DemoFailed(Exception):
    """The demo could not run; the message says why."""


def about(settings: DemoSettings, first: int, replayed: int) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "description": (
            f"The first model learned from the earliest {first} posts; the next {replayed} "
            "were replayed in time order. In the loop run, reviewers' labels retrain the "
            "model and candidates roll out by themselves; the control run is the same "
            "stream, seed and people with retraining off."
        ),
        "dataset": {
            "location": settings.data_location,
            "first_model_posts": first,
            "replayed_posts": replayed,
        },
        "settings": {
            name: value
            for name, value in settings.model_dump(mode="json").items()
            if name.startswith("demo_") or name in ("seed", "target_precision")
        },
    }


def run_flywheel(out_dir: Path, settings: DemoSettings, *, bad_candidate: bool) -> Path:
    """Both runs, then ``out_dir/report.json`` and ``report.html``; the HTML's path."""
    try:
        posts = load_posts(settings.data_location)
        stream = split_stream(posts, settings.demo_train_share, settings.demo_max_items)
    except (DataError, ValueError) as exc:
        raise DemoFailed(str(exc)) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    err.print(
        f"first model: {len(stream.first)} posts up to {stream.first[-1].created_on}; "
        f"stream: {len(stream.replay)} posts at {settings.demo_items_per_second}/s",
        highlight=False,
    )
    for name in RUNS:  # a previous demo's stores must not mix in
        shutil.rmtree(out_dir / name, ignore_errors=True)
    try:
        results = run_both(out_dir, settings, stream, bad_candidate=bad_candidate)
    except DemoError as exc:
        raise DemoFailed(str(exc)) from exc
    loop = results["loop"]
    report = build_report(
        posts=stream.replay,
        window_count=settings.demo_windows,
        outcomes={name: result.outcomes(stream.replay) for name, result in results.items()},
        versions=loop.versions,
        rollouts=loop.rollouts,
        runs={name: result.summary() for name, result in results.items()},
        about=about(settings, len(stream.first), len(stream.replay)),
    )
    write_json(report, out_dir / "report.json")
    return write_html(report, out_dir / "report.html")
