"""Grafana: provisioning, dashboards in sync with their source, panels well formed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.deploy.promql import DASHBOARDS, dashboard_queries, metric_names
from tests.deploy.test_prometheus import load_module
from tests.deploy.tools import ROOT

GRAFANA = ROOT / "deploy/grafana"


def datasource_uid() -> str:
    config = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (datasource,) = config["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    return str(datasource["uid"])


def test_the_three_dashboards_exist() -> None:
    assert {p.stem for p in DASHBOARDS} == {"pipeline", "review", "models"}


def test_committed_json_is_what_dashboards_py_builds() -> None:
    generator = load_module(GRAFANA / "dashboards.py")
    for name, text in generator.rendered().items():
        committed = (GRAFANA / "dashboards" / name).read_text()
        assert committed == text, f"{name} is stale: run python deploy/grafana/dashboards.py"


def test_provisioning_points_at_the_mounted_dashboards() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/tagstream.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{path}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    board = json.loads(path.read_text())
    uid = datasource_uid()
    assert board["uid"]
    assert board["title"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid
            assert metric_names(target["expr"]), f"{panel['title']}: reads no metric"


def test_dashboard_uids_are_unique() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_every_panel_query_names_tagstream_metrics_or_up() -> None:
    # process_* and python_*: the standard collectors every service registers
    allowed = ("tagstream_", "process_", "python_")
    for where, exprs in dashboard_queries().items():
        for expr in exprs:
            for name in metric_names(expr):
                assert name.startswith(allowed) or name == "up", f"{where}: {name}"


def test_the_pipeline_shows_every_services_traffic_resources_and_restarts() -> None:
    queries = dashboard_queries([p for p in DASHBOARDS if p.stem == "pipeline"])
    names = set().union(*(metric_names(e) for exprs in queries.values() for e in exprs))
    assert {
        "tagstream_http_requests_total",
        "tagstream_http_errors_total",
        "tagstream_http_request_duration_seconds_bucket",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "python_gc_collections_total",
        "process_start_time_seconds",
    } <= names
    restarts = [e for exprs in queries.values() for e in exprs if "changes(" in e]
    assert restarts == ['changes(process_start_time_seconds{job=~"tagstream-.+"}[1h])']
