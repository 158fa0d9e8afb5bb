"""A real Prometheus server scraping a tiny exporter of the classifier's and feedback's metrics.

Used by the end-to-end test and by ``recorded/record.py``, which captures the API responses
the unit tests replay.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tagstream.local.broker import free_port

PROMETHEUS = "/usr/bin/prometheus"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ROUTES = ("auto", "review")


@dataclass(frozen=True)
class Version:
    """What one model version did in the window, as the exporter will count it."""

    name: str
    role: str
    tags: Mapping[str, int]  # top tag -> items
    review_share: float = 0.1
    errors: int = 0
    batch_seconds: float | None = 0.003  # None: no batch timed in the window
    batches: int = 100
    agreement: tuple[int, int] | None = None  # (agree, disagree), canary only

    @property
    def items(self) -> int:
        return sum(self.tags.values())


@dataclass(frozen=True)
class Scenario:
    name: str
    canary: Version
    stable: Version
    description: str
    exported: bool = True  # False: neither version has any series (no data at all)
    paired: tuple[float, float, float, float] | None = (440, 25, 20, 15)
    """Labelled items both answered: (both right, canary only, stable only, neither)."""


class Exporter:
    """The metrics the analysis reads, served over HTTP from a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_version", "role"]
        self.predictions = Counter(
            "tagstream_classifier_predictions", "Items scored.", [*labels, "tag", "route"],
            registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "tagstream_classifier_inference_errors", "Inference errors.", labels,
            registry=self.registry,
        )  # fmt: skip
        self.seconds = Histogram(
            "tagstream_classifier_inference_seconds", "Inference per batch.", labels,
            buckets=BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.agreement = Counter(
            "tagstream_classifier_agreement", "Canary vs stable top tag.", [*labels, "agreement"],
            registry=self.registry,
        )  # fmt: skip
        self.paired = Gauge(
            "tagstream_feedback_paired_labels", "Labelled items both versions answered.",
            ["stable_version", "canary_version", "outcome"], registry=self.registry,
        )  # fmt: skip
        self._server, self._thread = start_http_server(0, "127.0.0.1", registry=self.registry)
        self.target = f"127.0.0.1:{self._server.server_port}"

    def initialise(self, v: Version) -> None:
        """Every child at zero, as the classifier does when a model loads (counters only
        increase from a first scraped zero, so increase() sees all of the window)."""
        for tag in v.tags:
            for route in ROUTES:
                self.predictions.labels(v.name, v.role, tag, route)
        self.errors.labels(v.name, v.role)
        self.seconds.labels(v.name, v.role)
        if v.agreement is not None:
            for outcome in ("agree", "disagree"):
                self.agreement.labels(v.name, v.role, outcome)

    def label(self, s: Scenario) -> None:
        """The feedback service's paired counts (a gauge: exported as they stand)."""
        if s.paired is None:
            return
        outcomes = ("both_correct", "canary_only", "stable_only", "neither_correct")
        for outcome, count in zip(outcomes, s.paired, strict=True):
            self.paired.labels(s.stable.name, s.canary.name, outcome).set(count)

    def play(self, v: Version) -> None:
        """Count the window's activity."""
        for tag, items in v.tags.items():
            review = round(items * v.review_share)
            self.predictions.labels(v.name, v.role, tag, "review").inc(review)
            self.predictions.labels(v.name, v.role, tag, "auto").inc(items - review)
        self.errors.labels(v.name, v.role).inc(v.errors)
        if v.batch_seconds is not None:
            for _ in range(v.batches):
                self.seconds.labels(v.name, v.role).observe(v.batch_seconds)
        if v.agreement is not None:
            agree, disagree = v.agreement
            self.agreement.labels(v.name, v.role, "agree").inc(agree)
            self.agreement.labels(v.name, v.role, "disagree").inc(disagree)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def wait_for(
    condition: Callable[[], bool], *, within: float, what: str, every: float = 0.2
) -> None:
    """Poll ``condition`` until true; AssertionError after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        time.sleep(every)


class PrometheusServer:
    """/usr/bin/prometheus on a free loopback port, scraping ``targets`` every second."""

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: tagstream\n    static_configs:\n"
            f"      - targets: [{', '.join(repr(t) for t in targets)}]\n"
        )
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(self._ready, within=20, what="prometheus to be ready")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.base_url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, promql: str) -> dict[str, object]:
        """The raw decoded API response (what the recorder stores)."""
        response = httpx.post(f"{self.base_url}/api/v1/query", data={"query": promql}, timeout=5)
        body: dict[str, object] = response.json()
        return body

    def last_scrape(self) -> float:
        """Unix time of the newest completed scrape, 0 before the first."""
        result = self.query("max(timestamp(up))")
        data = result.get("data")
        series = data.get("result") if isinstance(data, dict) else None
        return float(series[0]["value"][1]) if series else 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def scraped(workdir: Path, scenarios: list[Scenario]) -> Iterator[PrometheusServer]:
    """An exporter playing ``scenarios`` and a server that has scraped all of it.

    Series are scraped at zero first, then the window's activity is counted, then this waits
    for a scrape that began after the counting finished: no fixed sleeps.
    """
    exporter = Exporter()
    try:
        played = [s for s in scenarios if s.exported]
        for s in played:
            exporter.initialise(s.canary)
            exporter.initialise(s.stable)
            exporter.label(s)
        server = PrometheusServer(workdir, [exporter.target])
        try:
            wait_for(lambda: server.last_scrape() > 0, within=15, what="a first scrape")
            for s in played:
                exporter.play(s.canary)
                exporter.play(s.stable)
            counted = time.time()
            wait_for(
                lambda: server.last_scrape() > counted, within=15, what="a scrape after counting"
            )
            yield server
        finally:
            server.stop()
    finally:
        exporter.close()


WINDOW_SECONDS = 120
TAGS = {"sports": 400, "politics": 300, "technology": 200, "science": 100}


def _pair(prefix: str, **canary: Any) -> tuple[Version, Version]:
    """A healthy canary/stable pair named ``<prefix>-canary``/``<prefix>-stable``, the
    canary's fields overridden by ``canary``."""
    stable = Version(f"{prefix}-stable", "stable", TAGS)
    healthy = Version(
        f"{prefix}-canary",
        "canary",
        {"sports": 410, "politics": 295, "technology": 195, "science": 100},
        agreement=(950, 50),
    )
    return replace(healthy, **canary), stable


def _scenario(
    name: str,
    description: str,
    paired: tuple[float, float, float, float] | None = (440, 25, 20, 15),
    **canary: Any,
) -> Scenario:
    c, s = _pair(name, **canary)
    return Scenario(name, c, s, description, paired=paired)


SCENARIOS = [
    _scenario(
        "good",
        "A healthy canary: every check passes; on 500 labelled items both answered it is "
        "right on 0.93, stable on 0.92.",
    ),
    _scenario(
        "bad",
        "Trained on shuffled labels: spread over all tags, unsure, disagrees, inaccurate.",
        paired=(130, 20, 330, 20),
        tags={"sports": 250, "politics": 250, "technology": 250, "science": 250},
        review_share=0.6,
        errors=30,
        agreement=(260, 740),
    ),
    _scenario(
        "slow", "Good predictions, 0.2 s per batch against stable's 3 ms.", batch_seconds=0.2
    ),
    Scenario(
        "no_data",
        *_pair("no_data"),
        "Neither version has any series (e.g. a wrong version name, or nothing scraped).",
        exported=False,
        paired=None,
    ),
    _scenario(
        "nan",
        "No batch timed in the window (p99 NaN) and a NaN paired label count.",
        paired=(440, float("nan"), 20, 15),
        batch_seconds=None,
    ),
    _scenario(
        "low_traffic",
        "The canary scored only 10 items (the split sends it next to nothing).",
        tags={"sports": 4, "politics": 3, "technology": 2, "science": 1},
        agreement=(9, 1),
        batches=3,
    ),
    _scenario("few_labels", "Only 12 labelled items both answered so far.", paired=(9, 1, 1, 1)),
    _scenario(
        "accuracy_worse",
        "On the same 500 labelled items the canary is right on 0.70, stable on 0.91.",
        paired=(340, 10, 115, 35),
    ),
    _scenario(
        "accuracy_unsure",
        "On the same 60 labelled items the canary is right on 0.85, stable on 0.90: "
        "could be either.",
        paired=(48, 3, 6, 3),
    ),
]
