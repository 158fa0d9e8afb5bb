"""One run of the demo: start its system, replay the stream with its people, collect.

The loop run has the feedback service's retraining on; the control run has it off. Both
get the same seed, the same first model's data, the same stream at the same pace, and the
same simulated reviewers and end users, each on a real system of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared.console import err
from shared.settings import Settings
from tagstream.demo.actors import Reviewer, Tally, end_users, replay, watch_decisions
from tagstream.demo.collect import fetch_rollouts, gold_labels, registry_versions
from tagstream.demo.report import Outcome
from tagstream.demo.settings import DemoSettings
from tagstream.demo.stream import Post, Stream, shuffled_labels, write_posts
from tagstream.demo.system import DemoSystem

ACTIVE = ("shadow", "canary", "paused")


@dataclass
class RunResult:
    """What a run produced, for the report."""

    name: str
    tally: Tally
    versions: list[dict[str, Any]]
    rollouts: list[dict[str, Any]]
    gold_labels: int
    duration_seconds: float
    folder: Path
    bad_candidate: str | None = None
    ports: dict[str, int] = field(default_factory=dict)

    def outcomes(self, posts: Sequence[Post]) -> list[Outcome | None]:
        found: list[Outcome | None] = []
        for index, post in enumerate(posts):
            item = self.tally.item_ids.get(index)
            decision = self.tally.decisions.get(item) if item is not None else None
            found.append(Outcome(post.tag, decision) if decision is not None else None)
        return found

    def summary(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "ports": self.ports,
            "items_posted": len(self.tally.item_ids),
            "duplicates": self.tally.duplicates,
            "decided": self.tally.decided(),
            "human_decisions": self.tally.human_decisions,
            "labels": self.tally.labels,
            "wrong_labels": self.tally.wrong_labels,
            "reports": self.tally.reports,
            "gold_labels": self.gold_labels,
            "versions": [v["version"] for v in self.versions],
            "bad_candidate": self.bad_candidate,
            "duration_seconds": round(self.duration_seconds, 1),
            "stream_started_at": self.tally.stream_started_at,
            "stream_ended_at": self.tally.stream_ended_at,
        }


def run_env(settings: DemoSettings, data: Path, *, retrain: bool) -> dict[str, str]:
    """The TAGSTREAM_* settings of a run's services (beyond ports, stores and keys)."""
    return {
        "TAGSTREAM_SEED": str(settings.seed),
        "TAGSTREAM_APPROVED_TAGS": ",".join(settings.approved_tags),
        "TAGSTREAM_DATA_LOCATION": str(data),
        "TAGSTREAM_LOG_LEVEL": "INFO",
        "TAGSTREAM_FEEDBACK_RETRAIN_ENABLED": "true" if retrain else "false",
        "TAGSTREAM_FEEDBACK_RETRAIN_MIN_NEW_LABELS": str(settings.demo_retrain_min_new_labels),
        "TAGSTREAM_FEEDBACK_RETRAIN_COOLDOWN_SECONDS": str(settings.demo_retrain_cooldown_seconds),
        "TAGSTREAM_FEEDBACK_REFRESH_SECONDS": str(settings.demo_refresh_seconds),
        "TAGSTREAM_ROLLOUT_AUTO_START": "true",
        "TAGSTREAM_ROLLOUT_AUTO_START_POLL_SECONDS": "5",
        "TAGSTREAM_ROLLOUT_STEPS": ",".join(settings.demo_rollout_steps),
        "TAGSTREAM_ROLLOUT_INTERVAL_SECONDS": str(settings.demo_rollout_interval_seconds),
        "TAGSTREAM_ROLLOUT_MIN_PREDICTIONS": str(settings.demo_rollout_min_predictions),
        "TAGSTREAM_ROLLOUT_TICK_SECONDS": "0.5",
        "TAGSTREAM_CLASSIFIER_MODEL_POLL_SECONDS": "1",
        "TAGSTREAM_PROMETHEUS_SCRAPE_INTERVAL": settings.demo_scrape_interval,
    }


@dataclass
class Prepared:
    """A run whose system is up, with its reviewers, before the replay."""

    name: str
    system: DemoSystem
    reviewers: list[Reviewer]
    started: float
    bad_data: Path | None = None
    """Shuffled-label training data, registered a tenth into the stream (--bad-candidate)."""
    bad_candidate: str | None = None
    tally: Tally = field(default_factory=Tally)


def prepare(
    name: str,
    folder: Path,
    settings: DemoSettings,
    stream: Stream,
    *,
    retrain: bool,
    bad_candidate: bool,
    systems: list[DemoSystem],
) -> Prepared:
    """Start the run's system in ``folder`` (appended to ``systems`` at once, so that the
    caller stops it whatever happens) and train the first model."""
    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    data = write_posts(folder / "first-model.csv", stream.first)
    system = DemoSystem(name, folder, run_env(settings, data, retrain=retrain))
    systems.append(system)
    err.print(f"[bold]{name} run[/bold]: starting the system in {folder}", highlight=False)
    system.start_broker()
    first = system.train(data)
    tokens = [system.add_reviewer(f"demo-reviewer-{n + 1}") for n in range(settings.demo_reviewers)]
    password = system.add_watcher()
    system.start_services()
    ports = ", ".join(f"{k} {v}" for k, v in system.ports.items())
    err.print(f"  first model {first}; ports: {ports}", highlight=False)
    err.print(
        f"  review page {system.url('review')}/admin (log in as demo-admin, password "
        f"{password}) · prometheus {system.url('prometheus')}/graph · logs {system.log_dir}",
        highlight=False,
    )
    bad_data = None
    if bad_candidate:  # trained once the stream flows: its canary must meet traffic
        shuffled = shuffled_labels(stream.first, settings.seed)
        bad_data = write_posts(folder / "shuffled-labels.csv", shuffled)
    reviewers = [
        Reviewer(
            f"demo-reviewer-{n + 1}",
            token,
            settings.demo_reviewer_error_rate,
            settings.demo_reviewer_seconds_per_item,
            settings.approved_tags,
            settings.seed,
        )
        for n, token in enumerate(tokens)
    ]
    return Prepared(name, system, reviewers, started, bad_data=bad_data)


def run_both(
    out_dir: Path, settings: DemoSettings, stream: Stream, *, bad_candidate: bool
) -> dict[str, RunResult]:
    """Set up the loop and the control system, replay the stream into both at once, and
    collect; every process is stopped on the way out, also on Ctrl-C.

    The two replays run side by side: the pace is wall-clock time, so the demo takes the
    time of one stream, and the control's decisions do not depend on timing (its model
    never changes).
    """
    systems: list[DemoSystem] = []
    try:
        runs = [
            prepare(
                name,
                out_dir / name,
                settings,
                stream,
                retrain=name == "loop",
                bad_candidate=bad_candidate and name == "loop",
                systems=systems,
            )
            for name in ("loop", "control")
        ]
        asyncio.run(drive_all(runs, settings, stream.replay))
        results = {}
        for run in runs:
            system = run.system
            results[run.name] = RunResult(
                run.name,
                run.tally,
                registry_versions(system, settings.model_name),
                fetch_rollouts(system),
                gold_labels(system, settings),
                time.monotonic() - run.started,
                system.folder,
                run.bad_candidate,
                dict(system.ports),
            )
        return results
    finally:
        for system in systems:
            system.stop()


async def drive_all(runs: list[Prepared], settings: DemoSettings, posts: Sequence[Post]) -> None:
    """Drive every run at once, each with its line on one progress display."""
    with Progress(
        TextColumn("{task.fields[run]:<8}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
    ) as progress:
        await asyncio.gather(*(drive(run, settings, posts, progress) for run in runs))


def kafka_settings(system: DemoSystem, settings: DemoSettings) -> Settings:
    return Settings(
        _env_file=None,
        kafka_bootstrap_servers=f"127.0.0.1:{system.ports['broker']}",
        kafka_security_protocol="PLAINTEXT",
        seed=settings.seed,
        approved_tags=settings.approved_tags,
    )


async def drive(
    run: Prepared, settings: DemoSettings, posts: Sequence[Post], progress: Progress
) -> None:
    """Replay ``posts`` with the reviewers and end users at work; wait until it settles."""
    system, tally, reviewers = run.system, run.tally, run.reviewers
    reports: asyncio.Queue[tuple[str, Post]] = asyncio.Queue()
    task = progress.add_task("", total=len(posts), run=run.name)
    state = {"rollout": "none"}

    def describe() -> str:
        return (
            f"decided {tally.decided()} · labels {tally.labels} · reports {tally.reports} · "
            f"rollout {state['rollout']}"
        )

    posted = [0]

    def advance() -> None:
        system.check()
        posted[0] += 1
        if run.bad_data is not None and posted[0] == max(len(posts) // 10, 1):
            workers.append(asyncio.create_task(register_bad(run)))
        progress.update(task, advance=1, description=describe())

    async with httpx.AsyncClient(timeout=30) as client:
        workers = [
            asyncio.create_task(
                watch_decisions(
                    kafka_settings(system, settings), tally, reports, settings.demo_report_share
                )
            ),
            asyncio.create_task(
                end_users(
                    client,
                    system.url("feedback"),
                    system.feedback_key,
                    reports,
                    tally,
                    seed=settings.seed,
                    users=settings.demo_end_users,
                )
            ),
            asyncio.create_task(watch_rollouts(client, system, state)),
            *(asyncio.create_task(r.work(client, system.url("review"), tally)) for r in reviewers),
        ]
        try:
            await replay(
                client,
                system.url("ingest"),
                system.ingest_key,
                posts,
                tally,
                settings.demo_items_per_second,
                advance,
            )
            await settle(run, settings, reports, state, progress, task)
            progress.update(task, description=describe())
        finally:
            for worker in workers:
                worker.cancel()
            for worker in workers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await worker


async def register_bad(run: Prepared) -> None:
    """Train and register the shuffled-label candidate (started a tenth into the stream).

    Before the stream its canary would meet no traffic and be rolled back for that alone;
    during it the gate or the rollout's analyses judge it on the items flowing.
    """
    assert run.bad_data is not None
    run.bad_candidate = await run.system.train_async(run.bad_data)
    err.print(f"  bad candidate {run.bad_candidate} (shuffled labels) registered", highlight=False)


async def settle(
    run: Prepared,
    settings: DemoSettings,
    reports: asyncio.Queue[tuple[str, Post]],
    state: dict[str, str],
    progress: Progress,
    task: Any,
) -> None:
    """Wait (at most ``demo_settle_seconds``) for every decision, an empty review queue and
    no rollout in progress."""
    system, tally, reviewers = run.system, run.tally, run.reviewers
    deadline = asyncio.get_running_loop().time() + settings.demo_settle_seconds
    while asyncio.get_running_loop().time() < deadline:
        system.check()
        done = (
            tally.decided() >= len(tally.item_ids)
            and reports.empty()
            and all(r.idle for r in reviewers)
            and state["rollout"] not in ACTIVE
            and (run.bad_data is None or run.bad_candidate is not None)
        )
        if done:
            return
        progress.update(
            task,
            description=f"settling: decided {tally.decided()}/{len(tally.item_ids)} · "
            f"labels {tally.labels} · rollout {state['rollout']}",
        )
        await asyncio.sleep(0.5)
    err.print(f"[yellow]note:[/yellow] {system.name} run did not settle within the wait")


async def watch_rollouts(
    client: httpx.AsyncClient, system: DemoSystem, state: dict[str, str]
) -> None:
    """Keep ``state['rollout']`` at the newest rollout's ``version state``."""
    headers = {"Authorization": f"Bearer {system.admin_key}"}
    while True:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            response = await client.get(f"{system.url('rollout')}/v1/rollouts", headers=headers)
            found = response.json()["rollouts"]
            if found:
                state["rollout"] = found[0]["state"]
                state["version"] = found[0]["version"]
        await asyncio.sleep(1.0)
