"""The soak tool in short: 90 s at a low rate on the whole embedded system.

``make soak`` runs it for 30 minutes at 50 items/s (docs/reliability.md, "Soak"); here it
runs long enough to cross a few sampling windows with reviewers labelling and a canary
deciding a share, and the test holds what must hold on any machine: every accepted item
reconciled (decided, or on the DLQ), nothing lost, and the report written. The p99 and
memory bounds are the tool's verdict on a long run and are not asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench import soak
from tests.fixtures.data import data_location

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus, pytest.mark.slow, pytest.mark.chaos]


def test_short_soak_loses_nothing_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "soak"
    report = soak.run(
        out,
        data_location(),
        rate=5.0,
        seconds=90.0,
        window_seconds=15.0,
        reviewers=2,
        reviewer_seconds=0.5,
        canary_weight=25,
        extra_env={},
    )

    assert report["accepted"] > 0
    assert report["lost"] == 0, f"accepted, never decided nor dead-lettered: {report['lost_ids']}"
    assert report["decided"] + report["dead_lettered"] == report["accepted"]
    assert report["verdict"]["checks"]["lost"]["ok"]
    assert report["windows"], "no sampling window recorded"
    assert report["labels"] > 0, "the simulated reviewers labelled nothing"
    assert report["run"]["canary"] != report["run"]["stable"]
    assert json.loads((out / "soak.json").read_text())["accepted"] == report["accepted"]
    table = (out / "soak.md").read_text()
    assert "| from s | load 1m |" in table
    assert "Verdict:" in table
