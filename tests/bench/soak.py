"""Soak: the whole embedded system for a long run at a steady rate, watched per minute.

Starts what ``tagstream up`` starts (the embedded broker, Prometheus and the five
services under the supervisor) in a folder of its own on free loopback ports (never
8001-8005, 9090 or 9092, so it runs beside a developer's ``make run``), with two model
versions: the first stable, the second in a canary rollout held at one step
(``--canary-weight`` % of the items) for the whole run. Then, for ``--minutes``:

* the dataset is posted at ``--rate`` items/s (open loop, cycling through the rows,
  each with a fresh title so it is a new item), as ``make bench``'s end-to-end run does;
* simulated reviewers label the review queue through the review API with the dataset's
  tag, as the demo's do;
* every ``--window-seconds`` it records the RSS of every process, the broker's CPU per
  item and the load average; per window the report gives p50/p99 of 202 -> decision on
  ``content.classified`` and accepted/decided/lost counts.

At the end every accepted id is reconciled (decided, after dedupe on item id, or in the
DLQ); ``soak.json`` and ``soak.md`` go to ``--out``. The exit status is 1 when an item
was lost or a bound was passed (``BOUNDS``: p99 of the last windows against the first,
RSS of every process against its start), else 0.

    python -m tests.bench.soak --out soak-results --minutes 30 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console

from shared.messages import Classification
from shared.settings import Settings
from tagstream.cli.topics import assigned_consumer, end_offsets
from tagstream.demo.actors import Reviewer, Tally
from tagstream.demo.stream import Post, load_posts
from tagstream.demo.system import SERVICES, DemoSystem
from tests.bench.bench_e2e import cpu_seconds, offer_load, pct, watch_decisions, write_timeline
from tests.fixtures.data import data_location

console = Console(width=140, stderr=True)

#: How far a long run may drift before the soak fails (documented in docs/reliability.md).
#: ``edge`` windows at each end are compared (at most 5, a third of the run at least one).
BOUNDS = {
    # p99 of the items sent in the last windows <= this x p99 of those in the first
    # windows, or <= the floor (a run whose p99 stays under it is flat enough)
    "p99_growth": 2.0,
    "p99_floor_ms": 100.0,
    # every process: mean RSS over the last windows <= this x the first windows' + slack
    "rss_growth": 1.5,
    "rss_slack_mb": 64.0,
    # the embedded broker keeps every record in memory and deletes none (Tansu's memory
    # engine has no retention): its bound grows with the items accepted in between, by
    # this much per item (an item leaves 4-5 records of about 1 KB on the topics)
    "broker_kb_per_item": 8.0,
}
SETTLE_SECONDS = 120.0
WATCH_WAIT_MS = 5


def rss_mb(pid: int | None) -> float:
    """Resident set size of process ``pid`` in MB (VmRSS in /proc; NaN if it is gone)."""
    if pid is None:
        return float("nan")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@dataclass
class Sample:
    """The state of the run at one instant."""

    at: float
    pids: dict[str, int | None]
    cpu_s: dict[str, float]
    rss_mb: dict[str, float]
    load_1m: float
    labels: int
    human_decisions: int
    rollout: str


@dataclass
class Watch:
    """What the soak's watchers saw."""

    seen: dict[str, float] = field(default_factory=dict)
    model_decisions: Counter[str] = field(default_factory=Counter)
    human_decisions: int = 0
    rollout: str = "none"

    def on_decision(self, decision: Classification) -> None:
        if decision.route == "human":
            self.human_decisions += 1
        else:
            self.model_decisions[decision.item_id] += 1


def pids_of(system: DemoSystem) -> dict[str, int | None]:
    """The pid of the broker, Prometheus and every service (the supervisor restarts them)."""
    assert system.broker is not None
    assert system.broker.process is not None
    assert system.supervisor is not None
    found: dict[str, int | None] = {"broker": system.broker.process.pid}
    found.update({child.spec.name: child.pid for child in system.supervisor.children})
    return found


async def sample(system: DemoSystem, tally: Tally, watch: Watch) -> Sample:
    pids = pids_of(system)
    return Sample(
        at=time.perf_counter(),
        pids=pids,
        cpu_s={n: cpu_seconds(p) if p else float("nan") for n, p in pids.items()},
        rss_mb={n: rss_mb(p) for n, p in pids.items()} | {"soak": rss_mb(os.getpid())},
        load_1m=os.getloadavg()[0],
        labels=tally.labels,
        human_decisions=watch.human_decisions,
        rollout=watch.rollout,
    )


async def sampler(
    system: DemoSystem,
    tally: Tally,
    watch: Watch,
    samples: list[Sample],
    every: float,
    accepted_at: dict[str, float],
) -> None:
    """A sample every ``every`` s with a line on the console; the supervisor checked
    each second (restarts what crashed, fails when the broker is gone)."""
    next_at = time.perf_counter() + every
    while True:
        await asyncio.sleep(max(0.0, min(1.0, next_at - time.perf_counter())))
        system.check()
        if time.perf_counter() < next_at:
            continue
        next_at += every
        now = await sample(system, tally, watch)
        last = samples[-1]
        samples.append(now)
        # sent in this window, by the 202 time (the load generator fills accepted_at)
        ids = [i for i, t in accepted_at.items() if last.at <= t < now.at]
        broker = (now.cpu_s["broker"] - last.cpu_s["broker"]) * 1e3 / max(len(ids), 1)
        console.print(
            f"{now.at - samples[0].at:6.0f}s accepted {len(ids):5d} decided "
            f"{sum(1 for i in ids if i in watch.seen):5d} broker {broker:5.2f} ms/item "
            f"broker RSS {now.rss_mb['broker']:6.0f} MB labels {now.labels:5d} "
            f"rollout {now.rollout} load {now.load_1m:.2f}",
            highlight=False,
        )


async def watch_rollout(client: httpx.AsyncClient, system: DemoSystem, watch: Watch) -> None:
    """Keep ``watch.rollout`` at the newest rollout's state and step."""
    headers = {"Authorization": f"Bearer {system.admin_key}"}
    while True:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, IndexError):
            response = await client.get(f"{system.url('rollout')}/v1/rollouts", headers=headers)
            newest = response.json()["rollouts"][0]
            step = newest.get("step_label") or newest.get("step")
            watch.rollout = f"{newest['state']}@{step}" if step is not None else newest["state"]
        await asyncio.sleep(5.0)


async def dead_letters(settings: Settings) -> Counter[str]:
    """Item ids (record keys) on the DLQ topic, read from its start to its end."""
    consumer, tps = await assigned_consumer(settings, settings.topic_dlq)
    found: Counter[str] = Counter()
    try:
        ends = await end_offsets(consumer, tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind:
                break
            batch = await consumer.getmany(timeout_ms=200)
            for record in (r for part in batch.values() for r in part):
                found[record.key.decode(errors="replace") if record.key else ""] += 1
    finally:
        await consumer.stop()
    return found


def system_env(
    seconds: float, data: str, canary_weight: int, extra: dict[str, str]
) -> dict[str, str]:
    """The run's TAGSTREAM_* settings beyond ports, stores and keys."""
    return {
        "TAGSTREAM_DATA_LOCATION": data,
        "TAGSTREAM_FEEDBACK_RETRAIN_ENABLED": "false",  # no new version mid-run
        "TAGSTREAM_ROLLOUT_AUTO_START": "false",
        # one step, longer than the run: the canary decides its share throughout
        "TAGSTREAM_ROLLOUT_STEPS": str(canary_weight),
        "TAGSTREAM_ROLLOUT_INTERVAL_SECONDS": str(int(seconds + 3600)),
        "TAGSTREAM_ROLLOUT_WINDOW_SECONDS": "300",
        **extra,
    }


def window_rows(
    samples: list[Sample],
    sent_at: dict[str, float],
    accepted_at: dict[str, float],
    seen: dict[str, float],
    dlq: Counter[str],
    window_seconds: float,
) -> tuple[list[dict[str, Any]], list[list[float]]]:
    """One row per sampling window, for the items whose 202 came in it; and the e2e
    latencies (ms) of each window's items."""
    rows: list[dict[str, Any]] = []
    latencies: list[list[float]] = []
    start = samples[0].at
    for last, now in itertools.pairwise(samples):
        ids = [i for i, t in accepted_at.items() if last.at <= t < now.at]
        e2e = [(seen[i] - accepted_at[i]) * 1e3 for i in ids if i in seen]
        accept = [(accepted_at[i] - sent_at[i]) * 1e3 for i in ids]
        cpu = {
            n: round((now.cpu_s[n] - last.cpu_s[n]) * 1e3 / max(len(ids), 1), 3)
            for n in now.cpu_s
            if now.pids.get(n) == last.pids.get(n)  # a restarted process counts anew
        }
        latencies.append(e2e)
        rows.append(
            {
                "from_s": round(last.at - start),
                "to_s": round(now.at - start),
                "full": now.at - last.at >= window_seconds / 2,
                "load_1m": round(now.load_1m, 2),
                "accepted": len(ids),
                "decided": len(e2e),
                "dead_lettered": sum(1 for i in ids if i not in seen and i in dlq),
                "lost": sum(1 for i in ids if i not in seen and i not in dlq),
                "e2e_p50_ms": round(pct(e2e, 50), 1),
                "e2e_p99_ms": round(pct(e2e, 99), 1),
                "accept_p50_ms": round(pct(accept, 50), 1),
                "accept_p99_ms": round(pct(accept, 99), 1),
                "cpu_ms_per_item": cpu,
                "rss_mb": {n: round(v, 1) for n, v in now.rss_mb.items()},
                "labels": now.labels - last.labels,
                "rollout": now.rollout,
            }
        )
    return rows, latencies


def verdict(rows: list[dict[str, Any]], latencies: list[list[float]], lost: int) -> dict[str, Any]:
    """Whether the run held: nothing lost, p99 and every RSS within ``BOUNDS``, comparing
    the first and the last ``edge`` windows with items (at most 5, a third of them)."""
    # the windows that saw load for at least half their length (not the sample taken
    # as the load ended)
    full = [n for n, row in enumerate(rows) if row["accepted"] and row["full"]]
    edge = max(1, min(5, len(full) // 3))
    checks: dict[str, dict[str, Any]] = {"lost": {"value": lost, "ok": lost == 0}}
    if full:
        first, final = full[:edge], full[-edge:]
        before = pct([v for n in first for v in latencies[n]], 99)
        after = pct([v for n in final for v in latencies[n]], 99)
        limit = max(BOUNDS["p99_growth"] * before, BOUNDS["p99_floor_ms"])
        checks["p99"] = {
            "first_ms": round(before, 1),
            "last_ms": round(after, 1),
            "limit_ms": round(limit, 1),
            "ok": bool(after <= limit),
        }
        for name in rows[full[0]]["rss_mb"]:
            start = float(np.nanmean([rows[n]["rss_mb"][name] for n in first]))
            end = float(np.nanmean([rows[n]["rss_mb"][name] for n in final]))
            limit = BOUNDS["rss_growth"] * start + BOUNDS["rss_slack_mb"]
            if name == "broker":
                items = sum(row["accepted"] for row in rows[first[0] : final[-1] + 1])
                limit += items * BOUNDS["broker_kb_per_item"] / 1024
            checks[f"rss_{name}"] = {
                "first_mb": round(start, 1),
                "last_mb": round(end, 1),
                "limit_mb": round(limit, 1),
                "ok": bool(end <= limit),
            }
    return {"edge_windows": edge, "checks": checks, "ok": all(c["ok"] for c in checks.values())}


async def drive(
    system: DemoSystem,
    posts: list[Post],
    tally: Tally,
    team: list[Reviewer],
    rate: float,
    seconds: float,
    window_seconds: float,
) -> dict[str, Any]:
    """Offer the load with the reviewers at work; what was measured."""
    watch = Watch()
    stop = asyncio.Event()
    settings = Settings(
        _env_file=None,
        kafka_bootstrap_servers=f"127.0.0.1:{system.ports['broker']}",
        kafka_security_protocol="PLAINTEXT",
    )
    accepted: dict[str, float] = {}
    rows = [post.row() for post in posts]

    def on_accepted(index: int, item_id: str) -> None:
        accepted[item_id] = time.perf_counter()  # live, for the sampler's lines
        tally.posts_by_item[item_id] = posts[index % len(posts)]

    async with httpx.AsyncClient(timeout=30) as client:
        watcher = asyncio.create_task(
            watch_decisions(settings, watch.seen, stop, WATCH_WAIT_MS, watch.on_decision)
        )
        helpers = [
            asyncio.create_task(watch_rollout(client, system, watch)),
            *(asyncio.create_task(r.work(client, system.url("review"), tally)) for r in team),
        ]
        await asyncio.sleep(3)  # the watcher assigned before the load starts
        samples = [await sample(system, tally, watch)]
        ticker = asyncio.create_task(
            sampler(system, tally, watch, samples, window_seconds, accepted)
        )
        try:
            load = asyncio.create_task(
                offer_load(
                    system.url("ingest"), rows, rate, seconds, on_accepted, system.ingest_key
                )
            )
            accepted_at, sent_at, _, failures = await load
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        samples.append(await sample(system, tally, watch))
        console.print(f"load done; waiting up to {SETTLE_SECONDS:g} s for the decisions ...")
        deadline = time.perf_counter() + SETTLE_SECONDS
        while not accepted_at.keys() <= watch.seen.keys() and time.perf_counter() < deadline:
            system.check()
            await asyncio.sleep(0.5)
        stop.set()
        await watcher
        for helper in helpers:
            helper.cancel()
        for helper in helpers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await helper
    dlq = await dead_letters(settings)
    return {
        "samples": samples,
        "accepted_at": accepted_at,
        "sent_at": sent_at,
        "failures": failures,
        "watch": watch,
        "dlq": dlq,
    }


def run(
    out: Path,
    data: str,
    rate: float,
    seconds: float,
    window_seconds: float,
    reviewers: int,
    reviewer_seconds: float,
    canary_weight: int,
    extra_env: dict[str, str],
) -> dict[str, Any]:
    """The soak; its report (also written to ``out``)."""
    out.mkdir(parents=True, exist_ok=True)
    folder = out / "system"
    if folder.exists():
        shutil.rmtree(folder)  # the previous soak's logs, database and registry
    system = DemoSystem("soak", folder, system_env(seconds, data, canary_weight, extra_env))
    try:
        console.print(f"starting the system in {folder} ...")
        system.start_broker()
        stable = system.tagstream("model", "train", "--data", data).strip().splitlines()[-1]
        # a candidate that differs from stable only a little (the same training would
        # register the same version): the canary decides its share as stable would
        canary = system.tagstream("model", "train", "--data", data, "--param", "c=8")
        canary = canary.strip().splitlines()[-1]
        tokens = [system.add_reviewer(f"soak-reviewer-{n + 1}") for n in range(reviewers)]
        system.start_services()
        system.tagstream("rollout", "start", canary, "--reason", "soak: canary for the run")
        console.print(
            f"stable {stable}, canary {canary} at {canary_weight}%; ports {system.ports}; "
            f"offering {rate:g} items/s for {seconds:g} s",
            highlight=False,
        )
        posts = load_posts(data)
        tally = Tally()
        team = [
            Reviewer(f"soak-reviewer-{n + 1}", token, 0.0, reviewer_seconds, (), 42)
            for n, token in enumerate(tokens)
        ]
        measured = asyncio.run(drive(system, posts, tally, team, rate, seconds, window_seconds))
        restarts = (
            {c.spec.name: c.restarts for c in system.supervisor.children}
            if system.supervisor
            else {}
        )
    finally:
        system.stop()
    return report(
        out,
        measured,
        tally,
        restarts,
        {
            "rate_per_s": rate,
            "seconds": seconds,
            "window_seconds": window_seconds,
            "reviewers": reviewers,
            "reviewer_seconds_per_item": reviewer_seconds,
            "canary_weight": canary_weight,
            "stable": stable,
            "canary": canary,
            "settings": extra_env,
            "ports": dict(system.ports),
        },
    )


def report(
    out: Path,
    measured: dict[str, Any],
    tally: Tally,
    restarts: dict[str, int],
    run: dict[str, Any],
) -> dict[str, Any]:
    accepted_at, seen = measured["accepted_at"], measured["watch"].seen
    watch: Watch = measured["watch"]
    dlq: Counter[str] = measured["dlq"]
    rows, latencies = window_rows(
        measured["samples"], measured["sent_at"], accepted_at, seen, dlq, run["window_seconds"]
    )
    write_timeline(out, accepted_at, measured["sent_at"], seen)
    decided = [i for i in accepted_at if i in seen]
    lost = [i for i in accepted_at if i not in seen and i not in dlq]
    e2e = [v for window in latencies for v in window]
    result: dict[str, Any] = {
        "run": run,
        "accepted": len(accepted_at),
        "non_202": sum(measured["failures"].values()),
        "non_202_reasons": dict(measured["failures"]),
        "decided": len(decided),
        # decided more than once (a redelivered batch): harmless, consumers dedupe on id
        "decided_more_than_once": sum(1 for i in decided if watch.model_decisions[i] > 1),
        "dead_lettered": sum(1 for i in accepted_at if i not in seen and i in dlq),
        "dlq_entries": sum(dlq.values()),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "labels": tally.labels,
        "human_decisions": watch.human_decisions,
        "restarts": restarts,
        "e2e_ms": {"p50": round(pct(e2e, 50), 1), "p99": round(pct(e2e, 99), 1)},
        "cpus": os.cpu_count(),
        "bounds": BOUNDS,
        "windows": rows,
    }
    result["verdict"] = verdict(rows, latencies, len(lost))
    (out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "soak.md").write_text(markdown(result))
    return result


def markdown(result: dict[str, Any]) -> str:
    run = result["run"]
    names = ["broker", "prometheus", *SERVICES, "soak"]
    lines = [
        "# Soak",
        "",
        f"{run['rate_per_s']:g} items/s for {run['seconds']:g} s (open loop) into the embedded "
        f"system, {run['reviewers']} reviewers ({run['reviewer_seconds_per_item']:g} s per "
        f"label), canary {run['canary']} at {run['canary_weight']}% beside stable "
        f"{run['stable']}; {result['cpus']} CPU(s); settings other than the defaults: "
        f"{run['settings'] or 'none'}.",
        "",
        f"accepted {result['accepted']}, non-202 {result['non_202']}, decided "
        f"{result['decided']} (more than once: {result['decided_more_than_once']}), "
        f"dead-lettered {result['dead_lettered']}, **lost {result['lost']}**; labels "
        f"{result['labels']}, human decisions {result['human_decisions']}; restarts "
        f"{result['restarts']}; e2e p50 {result['e2e_ms']['p50']} ms, p99 "
        f"{result['e2e_ms']['p99']} ms.",
        "",
        "| from s | load 1m | accepted | decided | lost | e2e p50 | e2e p99 | accept p99 "
        "| broker CPU ms/item | RSS MB " + " / ".join(names) + " | labels | rollout |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for row in result["windows"]:
        rss = " / ".join(f"{row['rss_mb'].get(n, float('nan')):.0f}" for n in names)
        lines.append(
            f"| {row['from_s']} | {row['load_1m']:.2f} | {row['accepted']} | {row['decided']} "
            f"| {row['lost']} | {row['e2e_p50_ms']} | {row['e2e_p99_ms']} "
            f"| {row['accept_p99_ms']} | {row['cpu_ms_per_item'].get('broker', 'restarted')} "
            f"| {rss} | {row['labels']} | {row['rollout']} |"
        )
    verdict = result["verdict"]
    lines += [
        "",
        f"Verdict: **{'held' if verdict['ok'] else 'FAILED'}** "
        f"(first and last {verdict['edge_windows']} window(s) compared)",
        "",
    ]
    for name, check in verdict["checks"].items():
        figures = ", ".join(f"{k} {v}" for k, v in check.items() if k != "ok")
        lines.append(f"- {name}: {'ok' if check['ok'] else 'PAST THE BOUND'} ({figures})")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", default=data_location(), help="the dataset (path or URL)")
    parser.add_argument("--out", type=Path, default=Path("soak-results"))
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to offer load")
    parser.add_argument("--rate", type=float, default=50.0, help="offered items per second")
    parser.add_argument("--window-seconds", type=float, default=60.0, help="sampling window")
    parser.add_argument("--reviewers", type=int, default=3, help="simulated reviewers")
    parser.add_argument(
        "--reviewer-seconds", type=float, default=1.0, help="a reviewer's time per label"
    )
    parser.add_argument(
        "--canary-weight", type=int, default=25, help="%% of items the canary decides"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="TAGSTREAM_NAME=VALUE",
        help="a setting for every process of the run (repeatable)",
    )
    args = parser.parse_args()
    result = run(
        args.out,
        str(Path(args.data).resolve()) if "://" not in args.data else args.data,
        args.rate,
        args.minutes * 60,
        args.window_seconds,
        args.reviewers,
        args.reviewer_seconds,
        args.canary_weight,
        dict(item.split("=", 1) for item in args.env),
    )
    console.print((args.out / "soak.md").read_text(), highlight=False)
    sys.exit(0 if result["verdict"]["ok"] else 1)


if __name__ == "__main__":
    main()
