"""Running services: every metric a Grafana panel or an alert rule reads is exported, and
every line a service writes is a JSON log record.

The services run as real processes in production mode, as the deployments run them:
against PostgreSQL (migrated by ``tagstream db upgrade``, as the init job does) and the
real broker. Their /metrics are scraped: a name counts when it appears in an exposition
(a ``# TYPE`` line is enough, so a labelled metric without samples yet counts). ``up`` is
made by Prometheus itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared.kafka import ensure_topics
from shared.settings import Settings
from tagstream.local.broker import EmbeddedBroker
from tests.deploy.promql import (
    PROMETHEUS_OWN,
    dashboard_queries,
    exposed_names,
    rule_queries,
    used_names,
)
from tests.fixtures.db import _fresh_postgres_database
from tests.fixtures.services import ServiceProcess, port, running, service_env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

#: Every service Prometheus scrapes (deploy/prometheus/prometheus.yml, the ServiceMonitor).
SCRAPED = ("ingest", "classifier", "review", "feedback", "rollout")
#: HTTP services that answer X-Request-ID (RequestIdMiddleware).
REQUEST_IDS = ("ingest", "review", "feedback")


def run(*args: str, env: dict[str, str]) -> None:
    cli = Path(sys.executable).with_name(args[0])
    done = subprocess.run([str(cli), *args[1:]], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@dataclass(frozen=True)
class RunningSystem:
    expositions: dict[str, str]  # service -> text of its /metrics
    logs: dict[str, Path]  # service -> its stdout and stderr
    request_ids: dict[str, tuple[str, str]]  # service -> (sent, answered)
    schema: dict[str, bool]  # service -> the "schema" check of its /readyz


@pytest.fixture(scope="module")
def system(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    """Every scraped service as its own process, scraped once, then stopped."""
    folder = tmp_path_factory.mktemp("system")
    suffix = uuid.uuid4().hex[:8]
    database = _fresh_postgres_database()
    try:
        settings = Settings(
            environment="test",
            kafka_bootstrap_servers=broker.bootstrap_servers,
            registry_dir=folder / "registry",
            database_url=next(database),
            **{f"topic_{t}": f"{t}.{suffix}" for t in ("raw", "classified", "review", "feedback")},
            topic_models=f"models.events.{suffix}",
            topic_dlq=f"content.dlq.{suffix}",
        )
        asyncio.run(ensure_topics(settings))
        run(
            "tagstream",
            "db",
            "upgrade",
            env={**os.environ, "TAGSTREAM_DATABASE_URL": settings.database_url},
        )
        ports = {name: port() for name in SCRAPED}
        env = service_env(
            settings,
            TAGSTREAM_ENVIRONMENT="production",
            TAGSTREAM_REVIEW_SESSION_SECRET="metric-names-test-session-secret-0123456789",
            TAGSTREAM_LOG_LEVEL="INFO",
            TAGSTREAM_INGEST_API_KEYS="metric-names-test-key",
            TAGSTREAM_FEEDBACK_API_KEYS="metric-names-test-key",
            TAGSTREAM_ROLLOUT_ADMIN_KEYS="metric-names-test-key",
            TAGSTREAM_PROMETHEUS_URL=f"http://127.0.0.1:{port()}",  # nothing listens: fine
            TAGSTREAM_FEEDBACK_RETRAIN_ENABLED="false",
            **{f"TAGSTREAM_{name.upper()}_PORT": ports[name] for name in SCRAPED},
        )
        processes = [ServiceProcess(name, env, int(ports[name]), folder) for name in SCRAPED]
        with running(*processes), ThreadPoolExecutor(len(processes)) as pool:
            # started together: each spends seconds importing its libraries
            list(pool.map(lambda process: process.start("/healthz"), processes))
            expositions = {p.name: httpx.get(f"{p.url}/metrics", timeout=5).text for p in processes}
            request_ids = {}
            for p in processes:
                if p.name in REQUEST_IDS:
                    sent = f"req-{p.name}"
                    answer = httpx.get(f"{p.url}/readyz", headers={"X-Request-ID": sent}, timeout=5)
                    request_ids[p.name] = (sent, answer.headers.get("X-Request-ID", ""))
            schema = {
                p.name: httpx.get(f"{p.url}/readyz", timeout=5).json()["checks"]["schema"]
                for p in processes
            }
            logs = {p.name: p.log_path for p in processes}
            yield RunningSystem(expositions, logs, request_ids, schema)
    finally:
        database.close()  # drops the database, also when a service failed to start


def test_every_metric_used_by_a_dashboard_or_an_alert_is_exported(system: RunningSystem) -> None:
    exported = set().union(*(exposed_names(text) for text in system.expositions.values()))
    used = used_names({**dashboard_queries(), **rule_queries()})
    assert used, "no queries found"
    missing = {
        name: sorted(where)
        for name, where in used.items()
        if name not in exported and name not in PROMETHEUS_OWN
    }
    assert not missing, f"used but exported by no service: {missing}"


def test_every_scraped_service_exports_tagstream_metrics(system: RunningSystem) -> None:
    for name, text in system.expositions.items():
        assert f"tagstream_{name}_" in text, f"{name} exports no tagstream_{name}_* metric"


def test_every_service_exports_process_runtime_and_request_metrics_without_created(
    system: RunningSystem,
) -> None:
    for name, text in system.expositions.items():
        names = exposed_names(text)
        assert {
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
            "python_info",
            "python_gc_collections_total",
            "tagstream_http_requests_total",
            "tagstream_http_errors_total",
            "tagstream_http_request_duration_seconds_bucket",
        } <= names, name
        samples = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert not [s for s in samples if s.split("{")[0].split(" ")[0].endswith("_created")]
        # /healthz answered before the scrape: counted under its route
        assert 'tagstream_http_requests_total{method="GET",route="/healthz",status="200"}' in text


def test_every_line_a_service_writes_is_a_json_record_of_that_service(
    system: RunningSystem,
) -> None:
    for name, path in system.logs.items():
        lines = path.read_text().splitlines()
        assert lines, f"{name} wrote nothing at INFO"
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"{name} wrote a line that is not JSON: {line!r}")
            assert record["service"] == name, line
            assert {"event", "level", "timestamp"} <= record.keys(), line


def test_http_services_answer_the_request_id(system: RunningSystem) -> None:
    for name, (sent, answered) in system.request_ids.items():
        assert answered == sent, name


def test_every_service_finds_the_schema_tagstream_db_upgrade_made(system: RunningSystem) -> None:
    # services never migrate: each checks its owners' revisions against what the init
    # job's `tagstream db upgrade` left
    assert system.schema == dict.fromkeys(SCRAPED, True)
