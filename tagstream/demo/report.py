"""The demo's report: per-window figures of both runs, rollouts and lineage, as JSON.

Pure functions over what the runs recorded (no I/O but ``write_json``), so the figures
are tested without running anything. ``html.py`` renders the same dict with pictures.

A window's figures, for each run, over the items of the window that got a model decision:

* ``accuracy``: share whose model answer (``predicted_tag``) is the dataset's tag;
* ``auto_precision``: among the items the model decided alone (``route`` ``auto``), the
  share tagged right (None when none was);
* ``review_share``: share routed to people (``route`` ``review``): the review load;
* ``items``: how many items that is; ``versions``: how many each model version decided.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tagstream.demo.actors import Decision
from tagstream.demo.stream import Post, windows

OUTCOMES = {"promoted": "promoted", "rolled_back": "rolled_back"}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One replayed item: the dataset's tag and the model's decision on it."""

    truth: str
    decision: Decision


def window_figures(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """``accuracy``, ``auto_precision``, ``review_share``, ``items`` (see the module doc)."""
    found = list(outcomes)
    items = len(found)
    auto = [o for o in found if o.decision.route == "auto"]
    right = sum(o.decision.predicted_tag == o.truth for o in found)
    auto_right = sum(o.decision.tag == o.truth for o in auto)
    return {
        "items": items,
        "accuracy": right / items if items else None,
        "auto_precision": auto_right / len(auto) if auto else None,
        "review_share": (items - len(auto)) / items if items else None,
        "auto_items": len(auto),
        "versions": dict(Counter(o.decision.model_version for o in found)),
    }


def stream_windows(
    posts: Sequence[Post], count: int, runs: Mapping[str, Sequence[Outcome | None]]
) -> list[dict[str, Any]]:
    """One entry per window of ``posts`` in time order, with each run's figures.

    ``runs`` maps a run's name to its outcome per position of ``posts`` (None: the item
    got no model decision, or was a duplicate: it is not counted).
    """
    for name, outcomes in runs.items():
        if len(outcomes) != len(posts):
            raise ValueError(f"run {name!r} has {len(outcomes)} outcomes for {len(posts)} posts")
    found = []
    for index, span in enumerate(windows(count, len(posts))):
        entry: dict[str, Any] = {
            "index": index,
            "first_created_on": posts[span.start].created_on,
            "last_created_on": posts[span.stop - 1].created_on,
            "posts": len(span),
        }
        for name, outcomes in runs.items():
            entry[name] = window_figures(o for o in (outcomes[i] for i in span) if o is not None)
        found.append(entry)
    return found


def totals(windows_: Sequence[Mapping[str, Any]], run: str, start: int = 0) -> dict[str, Any]:
    """Figures of ``run`` over windows ``start``.. (weighted by items)."""
    chosen = [w[run] for w in windows_[start:]]
    items = sum(w["items"] for w in chosen)
    auto = sum(w["auto_items"] for w in chosen)

    def weighted(key: str, weight: str) -> float | None:
        total = sum(w[weight] for w in chosen if w[key] is not None)
        if not total:
            return None
        return sum(w[key] * w[weight] for w in chosen if w[key] is not None) / total

    return {
        "items": items,
        "accuracy": weighted("accuracy", "items"),
        "auto_precision": weighted("auto_precision", "auto_items") if auto else None,
        "review_share": weighted("review_share", "items"),
    }


def rollout_entry(rollout: Mapping[str, Any]) -> dict[str, Any] | None:
    """A decided rollout (promoted or rolled back) with the figures of each analysis."""
    outcome = OUTCOMES.get(str(rollout.get("state")))
    if outcome is None:
        return None
    return {
        "version": rollout["version"],
        "stable_version": rollout.get("stable_version"),
        "outcome": outcome,
        "reason": rollout.get("reason"),
        "started_at": rollout.get("started_at"),
        "decided_at": rollout.get("finished_at") or rollout.get("updated_at"),
        "analyses": [
            {
                "step": a.get("step"),
                "verdict": a.get("verdict"),
                "action": a.get("action"),
                "analysed_at": a.get("analysed_at"),
                "metrics": {
                    c.get("check"): {
                        "values": c.get("values"),
                        "threshold": c.get("threshold"),
                        "verdict": c.get("verdict"),
                    }
                    for c in a.get("checks", [])
                },
            }
            for a in reversed(rollout.get("analyses", []))  # served newest first
        ],
    }


def rejected_entry(version: Mapping[str, Any]) -> dict[str, Any]:
    """A candidate the offline gate stopped before any traffic, with the gate's figures."""
    gate = version.get("gate") or {}
    return {
        "version": version["version"],
        "stable_version": gate.get("stable_version"),
        "outcome": "rejected",
        "reason": gate.get("reason"),
        "started_at": None,
        "decided_at": version.get("created_at"),
        "analyses": [{"step": "offline gate", "verdict": gate.get("verdict"), "metrics": gate}],
    }


def lineage_entry(version: Mapping[str, Any]) -> dict[str, Any]:
    """A version, its parent and the gold labels it learned from (count and hash)."""
    params = version.get("params") or {}
    gate = version.get("gate") or {}
    return {
        "version": version["version"],
        "parent": version.get("parent_version"),
        "status": version.get("status"),
        "created_at": version.get("created_at"),
        "gold_labels": int(params.get("gold_labels", 0)),
        "gold_hash": params.get("gold_hash"),
        "data_hash": version.get("data_hash"),
        "gate": gate.get("verdict", "not_run"),
    }


def build_report(
    *,
    posts: Sequence[Post],
    window_count: int,
    outcomes: Mapping[str, Sequence[Outcome | None]],
    versions: Sequence[Mapping[str, Any]],
    rollouts: Sequence[Mapping[str, Any]],
    runs: Mapping[str, Mapping[str, Any]],
    about: Mapping[str, Any],
) -> dict[str, Any]:
    """The whole report (the contract of ``report.json``).

    ``versions`` and ``rollouts`` are the loop run's registry versions and rollout
    service answers, as JSON; ``runs`` holds what each run did (labels, reports, ...).
    """
    found = stream_windows(posts, window_count, outcomes)
    later = len(found) // 2
    decided = [e for e in (rollout_entry(r) for r in rollouts) if e is not None]
    ended = (runs.get("loop") or {}).get("stream_ended_at")
    for entry in decided:  # no traffic after the stream: such a decision says little
        entry["after_stream"] = later_than(entry["decided_at"], ended)
    rejected = [rejected_entry(v) for v in versions if v.get("status") == "rejected"]
    ordered = sorted(
        [*decided, *rejected], key=lambda r: str(r.get("decided_at") or r.get("started_at"))
    )
    return {
        **about,
        "windows": found,
        "summary": {
            name: {
                "whole_stream": totals(found, name),
                "later_half": totals(found, name, later),
            }
            for name in outcomes
        },
        "rollouts": ordered,
        "unfinished_rollouts": [
            {"version": r["version"], "state": r.get("state")}
            for r in rollouts
            if rollout_entry(r) is None
        ],
        "lineage": [
            lineage_entry(v) for v in sorted(versions, key=lambda v: str(v.get("created_at")))
        ],
        "runs": dict(runs),
    }


def later_than(moment: Any, reference: Any) -> bool:
    """Whether ISO time ``moment`` is after ``reference`` (False when either is missing)."""
    if not moment or not reference:
        return False
    return datetime.fromisoformat(str(moment)) > datetime.fromisoformat(str(reference))


def write_json(report: Mapping[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return path
