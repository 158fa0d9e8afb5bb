"""The report builder: per-window figures of both runs, rollouts and lineage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tagstream.demo.actors import Decision
from tagstream.demo.html import write_html
from tagstream.demo.report import (
    Outcome,
    build_report,
    later_than,
    stream_windows,
    window_figures,
    write_json,
)
from tagstream.demo.stream import Post

V1, V2 = "v111111111111", "v222222222222"


def outcome(truth: str, route: str, predicted: str, version: str = V1) -> Outcome:
    tag = predicted if route == "auto" else "needs_review"
    return Outcome(truth, Decision(route, tag, predicted, version, "stable"))


def posts(count: int) -> list[Post]:
    return [
        Post(str(n), f"2020-06-{n + 1:02d} 00:00:00", f"t{n}", "", "mlops") for n in range(count)
    ]


def test_window_figures_count_accuracy_precision_and_review_share() -> None:
    figures = window_figures(
        [
            outcome("mlops", "auto", "mlops"),
            outcome("mlops", "auto", "other"),  # a wrong auto-accepted tag
            outcome("other", "review", "other"),  # right guess, left to people
            outcome("other", "review", "mlops", V2),
        ]
    )
    assert figures["items"] == 4
    assert figures["accuracy"] == pytest.approx(2 / 4)
    assert figures["auto_precision"] == pytest.approx(1 / 2)
    assert figures["review_share"] == pytest.approx(2 / 4)
    assert figures["versions"] == {V1: 3, V2: 1}


def test_a_window_with_nothing_auto_accepted_has_no_precision() -> None:
    figures = window_figures([outcome("mlops", "review", "mlops")])
    assert figures["auto_precision"] is None
    assert figures["review_share"] == 1.0
    assert window_figures([])["accuracy"] is None


def test_windows_hold_both_runs_in_time_order_and_skip_undecided_items() -> None:
    stream = posts(5)
    loop = [outcome("mlops", "auto", "mlops")] * 4 + [None]
    control = [outcome("mlops", "review", "other")] * 5
    found = stream_windows(stream, 2, {"loop": loop, "control": control})
    assert [w["posts"] for w in found] == [3, 2]
    assert found[0]["first_created_on"] < found[1]["first_created_on"]
    assert [w["loop"]["items"] for w in found] == [3, 1]
    assert [w["control"]["accuracy"] for w in found] == [0.0, 0.0]
    assert found[1]["loop"]["accuracy"] == 1.0
    with pytest.raises(ValueError, match="4 outcomes for 5 posts"):
        stream_windows(stream, 2, {"loop": loop[:4]})


def rollout(version: str, state: str, finished: str) -> dict[str, Any]:
    check = {"check": "shadow_agreement", "verdict": "pass", "values": {"agreement": 0.93}}
    return {
        "version": version,
        "stable_version": V1,
        "state": state,
        "reason": "every step passed",
        "started_at": "2026-01-01T10:00:00Z",
        "finished_at": finished,
        "updated_at": finished,
        "analyses": [
            {"step": "100%", "verdict": "pass", "action": "promote", "checks": [check]},
            {"step": "shadow", "verdict": "pass", "action": "advance", "checks": [check]},
        ],
    }


def version(name: str, status: str, parent: str | None, gold: int, at: str) -> dict[str, Any]:
    params = {"gold_labels": gold, "gold_hash": f"hash-{gold}"} if gold else {}
    gate = {"verdict": "failed", "reason": "worse", "overall": {"difference": -0.2}}
    return {
        "version": name,
        "status": status,
        "parent_version": parent,
        "created_at": at,
        "params": params,
        "data_hash": "d",
        "gate": gate if status == "rejected" else None,
    }


def report(stream: list[Post]) -> dict[str, Any]:
    decided = [outcome("mlops", "auto", "mlops", V2)] * len(stream)
    return build_report(
        posts=stream,
        window_count=2,
        outcomes={"loop": decided, "control": decided},
        versions=[
            version(V2, "stable", V1, 40, "2026-01-01T10:01:00Z"),
            version(V1, "retired", None, 0, "2026-01-01T09:00:00Z"),
            version("vbad", "rejected", V1, 0, "2026-01-01T09:30:00Z"),
        ],
        rollouts=[
            rollout(V2, "promoted", "2026-01-01T10:05:00Z"),
            {"version": "v3", "state": "shadow", "analyses": []},
        ],
        runs={"loop": {"stream_ended_at": "2026-01-01T10:04:00+00:00"}, "control": {}},
        about={"description": "test"},
    )


def test_the_report_holds_the_contract_fields() -> None:
    built = report(posts(4))
    assert len(built["windows"]) == 2
    for window in built["windows"]:
        for run in ("loop", "control"):
            assert {"accuracy", "auto_precision", "review_share", "items"} <= set(window[run])
    assert [(r["version"], r["outcome"]) for r in built["rollouts"]] == [
        ("vbad", "rejected"),
        (V2, "promoted"),
    ]
    promoted = built["rollouts"][1]
    assert [a["step"] for a in promoted["analyses"]] == ["shadow", "100%"]  # oldest first
    assert promoted["analyses"][0]["metrics"]["shadow_agreement"]["values"] == {"agreement": 0.93}
    assert promoted["after_stream"] is True
    assert built["unfinished_rollouts"] == [{"version": "v3", "state": "shadow"}]
    assert [(v["version"], v["parent"], v["gold_labels"]) for v in built["lineage"]] == [
        (V1, None, 0),
        ("vbad", V1, 0),
        (V2, V1, 40),
    ]
    assert built["lineage"][2]["gold_hash"] == "hash-40"
    assert built["summary"]["loop"]["whole_stream"]["accuracy"] == 1.0


def test_later_than_compares_times_of_either_iso_spelling() -> None:
    assert later_than("2026-01-01T10:00:01Z", "2026-01-01T10:00:00.5+00:00")
    assert not later_than("2026-01-01T10:00:00Z", "2026-01-01T10:00:00.5+00:00")
    assert not later_than(None, "2026-01-01T10:00:00Z")


def test_json_and_html_are_written(tmp_path: Path) -> None:
    built = report(posts(6))
    saved = json.loads(write_json(built, tmp_path / "report.json").read_text())
    assert saved["windows"] == built["windows"]
    page = write_html(built, tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4
    assert V2 in page
    assert "promoted" in page
    assert "rejected" in page
