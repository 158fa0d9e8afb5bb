"""``tagstream demo`` end to end: a shortened demo on the real dataset, as a process.

Real everything: two embedded brokers, Prometheus servers, the five services of each run,
SQLite stores, training. The demo is run once (fast intervals, a shorter stream) and the
loop must have closed in it: reviewers' labels stored as gold, a candidate trained on them
and announced, its rollout (or the gate's rejection) decided, and a report holding both
runs. Ctrl-C in the middle of a demo leaves nothing running. The report's picture in the
README is taken here, by headless Chromium, and checked; it goes to docs/images/ only
under ``make screenshots`` (tests/fixtures/screenshots.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.screenshots import check_picture, screenshot_path

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
#: docs/images/ under TAGSTREAM_UPDATE_SCREENSHOTS=1 (make screenshots), else the demo's folder
SCREENSHOT = "flywheel-report.png"
MARKER_PREFIX = "tagstream-demo-test"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: A shorter stream than --fast replays, and retraining after fewer labels: the loop
#: closes within the test's minutes.
SHORT = {
    "TAGSTREAM_DEMO_MAX_ITEMS": "240",
    "TAGSTREAM_DEMO_WINDOWS": "4",
    "TAGSTREAM_DEMO_RETRAIN_MIN_NEW_LABELS": "25",
    "TAGSTREAM_DEMO_ROLLOUT_STEPS": "shadow,100",
    "TAGSTREAM_DEMO_ROLLOUT_INTERVAL_SECONDS": "5",
}


def demo_env(marker: str, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGSTREAM_")}
    return {
        **env,
        "TAGSTREAM_DATA_LOCATION": str(data),
        **SHORT,
        "DEMO_TEST_MARKER": marker,
    }


def demo_command(out: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "tagstream.cli.main", "demo", "--out", str(out), *flags]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def processes_marked(marker: str) -> list[str]:
    """Command lines of running processes whose environment holds ``marker``.

    The demo's every child (broker, Prometheus, services, training) inherits the
    environment it was started with, so a variable set only for it finds them all.
    """
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


@dataclass(frozen=True)
class Demo:
    out: Path
    report: dict[str, Any]
    marker: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, dataset_path: Path) -> Demo:
    out = tmp_path_factory.mktemp("demo")
    marker = f"{MARKER_PREFIX}-{uuid.uuid4()}"
    done = subprocess.run(
        demo_command(out, "--fast", "--bad-candidate"),
        env=demo_env(marker, dataset_path),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return Demo(out, json.loads((out / "report.json").read_text()), marker)


def test_the_loop_closed_and_the_report_holds_both_runs(demo: Demo) -> None:
    out, report = demo.out, demo.report
    loop, control = report["runs"]["loop"], report["runs"]["control"]
    # Labels stored: the simulated reviewers' labels are gold in the loop's store.
    assert loop["labels"] > 0
    assert loop["gold_labels"] >= 25
    # A candidate trained on them, announced: the rollout service gated it by itself.
    trained = [v for v in report["lineage"] if v["gold_labels"] > 0]
    assert trained, report["lineage"]
    first = report["lineage"][0]
    assert first["parent"] is None
    assert first["gold_labels"] == 0
    assert all(v["parent"] is not None and len(v["gold_hash"]) == 64 for v in trained)
    finished = [
        json.loads(line)
        for line in (out / "loop" / "log" / "feedback.log").read_text().splitlines()
        if '"retrain_finished"' in line
    ]
    assert any(event["announced"] for event in finished)
    # A rollout decided with nobody typing a command (or the gate's rejection).
    decided = {r["version"]: r for r in report["rollouts"]}
    assert {v["version"] for v in trained} & set(decided)
    for rollout in decided.values():
        assert rollout["outcome"] in ("promoted", "rolled_back", "rejected")
        assert rollout["analyses"]
        assert all("metrics" in a for a in rollout["analyses"])
    # --bad-candidate: the shuffled-label candidate was stopped.
    assert loop["bad_candidate"] in decided
    assert decided[loop["bad_candidate"]]["outcome"] in ("rejected", "rolled_back")
    # The control run never retrained: one version, the same first model.
    assert control["versions"] == [first["version"]]
    # Both runs in every window, over the same stream.
    assert len(report["windows"]) == 4
    for window in report["windows"]:
        assert window["loop"]["items"] > 0
        assert window["control"]["items"] > 0
        for run in ("loop", "control"):
            assert {"accuracy", "auto_precision", "review_share", "items"} <= set(window[run])
    assert sum(w["control"]["items"] for w in report["windows"]) == control["decided"]
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 4
    # Nothing of it left running.
    for run in (loop, control):
        assert not [name for name, port in run["ports"].items() if listening(port)]
    assert not processes_marked(demo.marker)


def test_ctrl_c_stops_every_process_of_the_demo(tmp_path: Path, dataset_path: Path) -> None:
    marker = f"{MARKER_PREFIX}-{uuid.uuid4()}"
    demo = subprocess.Popen(
        demo_command(tmp_path),
        env=demo_env(marker, dataset_path),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # the test's own Ctrl-C must not reach it
    )
    assert demo.stderr is not None
    seen = ""
    deadline = time.monotonic() + 300
    # The loop run's system is up once its review page is announced.
    while "review page" not in seen:
        line = demo.stderr.readline()
        assert line or demo.poll() is None, seen
        seen += line
        assert time.monotonic() < deadline, seen
    announced = " ".join(seen.split()).split("ports:")[1].split("review page")[0]
    ports = [int(p) for p in re.findall(r"[a-z]+ (\d+)", announced)]
    assert len(ports) == 7  # broker, prometheus and the five services
    assert all(listening(p) for p in ports)
    demo.send_signal(signal.SIGINT)
    _, rest = demo.communicate(timeout=120)
    assert demo.returncode == 130, rest
    assert "interrupted" in rest
    assert not [p for p in ports if listening(p)]
    assert not processes_marked(marker)


def test_screenshot_of_the_report(demo: Demo) -> None:
    """The README's picture of the report, taken by headless Chromium (never skipped)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.fail(
            f"headless Chromium is needed for the report screenshot, missing: {missing}. "
            "apt-get install chromium chromium-driver",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    out = demo.out
    profile = Path(tempfile.mkdtemp(prefix="tagstream-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1280,1500",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.get((out / "report.html").as_uri())
        assert "data flywheel" in driver.title
        images = driver.find_elements("css selector", ".charts img")
        assert len(images) == 4
        assert all(driver.execute_script("return arguments[0].naturalWidth", i) for i in images)
        picture = screenshot_path(SCREENSHOT, out / "pictures")
        assert driver.save_screenshot(str(picture))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    check_picture(picture, width=1280, min_height=800)
