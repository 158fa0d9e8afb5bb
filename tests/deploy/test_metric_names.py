"""Every metric a Grafana panel or an alert rule reads is exported by a running service.

The services run as real processes against the real broker, and their /metrics are
scraped: a name counts when it appears in an exposition (a ``# TYPE`` line is enough, so
a labelled metric without samples yet counts). ``up`` is made by Prometheus itself.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from shared.db.migrate import upgrade
from shared.settings import Settings
from tests.deploy.promql import (
    PROMETHEUS_OWN,
    dashboard_queries,
    exposed_names,
    rule_queries,
    used_names,
)
from tests.fixtures.services import ServiceProcess, port, running, service_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: Every service Prometheus scrapes (deploy/prometheus/prometheus.yml, the ServiceMonitor).
SCRAPED = ("ingest", "classifier", "review", "feedback", "rollout")


@pytest.fixture
def expositions(topics: Settings, tmp_path: Path) -> dict[str, str]:
    """service -> the text of its /metrics, each service running as its own process."""
    upgrade(topics.database_url)
    ports = {name: port() for name in SCRAPED}
    env = service_env(
        topics,
        TAGSTREAM_INGEST_API_KEYS="metric-names-test-key",
        TAGSTREAM_FEEDBACK_API_KEYS="metric-names-test-key",
        TAGSTREAM_ROLLOUT_ADMIN_KEYS="metric-names-test-key",
        TAGSTREAM_PROMETHEUS_URL=f"http://127.0.0.1:{port()}",  # nothing listens: fine
        TAGSTREAM_FEEDBACK_RETRAIN_ENABLED="false",
        **{f"TAGSTREAM_{name.upper()}_PORT": ports[name] for name in SCRAPED},
    )
    processes = [ServiceProcess(name, env, int(ports[name]), tmp_path) for name in SCRAPED]
    with running(*processes), ThreadPoolExecutor(len(processes)) as pool:
        # started together: each spends seconds importing its libraries
        list(pool.map(lambda process: process.start("/healthz"), processes))
        return {p.name: httpx.get(f"{p.url}/metrics", timeout=5).text for p in processes}


def test_every_metric_used_by_a_dashboard_or_an_alert_is_exported(
    expositions: dict[str, str],
) -> None:
    exported = set().union(*(exposed_names(text) for text in expositions.values()))
    used = used_names({**dashboard_queries(), **rule_queries()})
    assert used, "no queries found"
    missing = {
        name: sorted(where)
        for name, where in used.items()
        if name not in exported and name not in PROMETHEUS_OWN
    }
    assert not missing, f"used but exported by no service: {missing}"


def test_every_scraped_service_exports_tagstream_metrics(expositions: dict[str, str]) -> None:
    for name, text in expositions.items():
        assert f"tagstream_{name}_" in text, f"{name} exports no tagstream_{name}_* metric"
