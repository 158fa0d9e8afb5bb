"""Prometheus configuration and alert rules: promtool checks and unit tests, coverage."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from shared.settings import DEFAULT_RUNBOOK_BASE_URL
from tests.deploy.tools import ROOT, markdown_anchors, markdown_sections, run, tool

pytestmark = pytest.mark.deploy

PROMETHEUS = ROOT / "deploy/prometheus"
#: package data: `tagstream up` (from a checkout or a wheel) loads both
LOCAL = ROOT / "tagstream/local"
ALERTS = LOCAL / "alerts.yml"
#: prometheus.yml: compose's; embedded.yml: the `make run` / `tagstream up` Prometheus
CONFIGS = [PROMETHEUS / "prometheus.yml", LOCAL / "embedded.yml"]
OPERATIONS = ROOT / "docs/operations.md"

#: What the alerts must cover (issue 6): every one of these alert names must exist.
REQUIRED_ALERTS = {
    "TagstreamConsumerLagGrowing",  # consumer lag growing
    "TagstreamDeadLetters",  # DLQ rate
    "TagstreamIngestErrorRate",  # error rate
    "TagstreamInferenceErrorRate",
    "TagstreamLatencyOverBudget",  # p99 over the 100 ms budget
    "TagstreamReviewQueueOverSLA",  # oldest review item over SLA
    "TagstreamCanaryRolledBack",  # canary rolled back
    # online accuracy drop (issue 6), measured where it means something (issue 11): the
    # audit sample's precision of auto-accepted items, confidently below the target
    "TagstreamAutoPrecisionLow",
    "TagstreamNoData",  # no data from a service
    "TagstreamTargetDown",
}


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"tagstream_deploy_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_promtool_check_config(path: Path, tmp_path: Path) -> None:
    # Laid out as compose mounts them: the config with alerts.yml beside it.
    shutil.copy(path, tmp_path / path.name)
    shutil.copy(ALERTS, tmp_path / ALERTS.name)
    out = run(tool("promtool"), "check", "config", tmp_path / path.name)
    assert "SUCCESS" in out


def test_promtool_check_rules() -> None:
    out = run(tool("promtool"), "check", "rules", ALERTS)
    assert f"SUCCESS: {len(rules())} rules found" in out


def test_promtool_unit_tests_of_the_alerts() -> None:
    out = run(tool("promtool"), "test", "rules", PROMETHEUS / "tests/alerts_test.yml")
    assert "SUCCESS" in out


def test_compose_scrape_config_loads_the_rules() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    services = {"ingest", "classifier", "review", "feedback", "rollout"}
    assert {f"tagstream-{s}" for s in services} <= jobs


def test_the_required_alerts_exist() -> None:
    names = {str(rule["alert"]) for rule in rules()}
    assert not REQUIRED_ALERTS - names


def test_every_alert_has_severity_summary_and_a_runbook_that_exists() -> None:
    anchors = markdown_anchors(OPERATIONS)
    for rule in rules():
        labels, annotations = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict)
        assert isinstance(annotations, dict)
        assert labels.get("severity") in ("page", "ticket"), rule["alert"]
        assert annotations.get("summary"), rule["alert"]
        path, _, anchor = str(annotations["runbook_url"]).partition("#")
        # absolute once Prometheus fills in its runbook_base_url external label
        assert path == "{{ $externalLabels.runbook_base_url }}/operations.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no heading #{anchor} in {OPERATIONS.name}"


def test_every_alerts_runbook_section_names_that_alert() -> None:
    """A link must land where the alert is explained, not on a neighbour's section."""
    sections = markdown_sections(OPERATIONS)
    assert "dev-everything-generated" not in sections  # a shell comment is no heading
    links: dict[str, str] = {}
    for rule in rules():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        links[str(rule["alert"])] = str(annotations["runbook_url"])
    # and the Kubernetes rules, whose links are written in
    committed = yaml.safe_load((ROOT / "k8s/base/monitoring/prometheusrule.yaml").read_text())
    for group in committed["spec"]["groups"]:
        for rule in group["rules"]:
            links[f"{rule['alert']} (PrometheusRule)"] = rule["annotations"]["runbook_url"]
    assert len(links) > len(REQUIRED_ALERTS)
    for alert, link in links.items():
        anchor = link.partition("#")[2]
        assert anchor in sections, f"{alert}: no heading #{anchor} in {OPERATIONS.name}"
        name = alert.split()[0]
        assert name in sections[anchor], f"{alert}: #{anchor} does not mention {name}"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_every_prometheus_we_ship_knows_the_runbook_base_url(path: Path) -> None:
    labels = yaml.safe_load(path.read_text())["global"]["external_labels"]
    assert labels["runbook_base_url"] == DEFAULT_RUNBOOK_BASE_URL


def test_kubernetes_prometheusrule_is_generated_from_alerts_yml() -> None:
    generator = load_module(PROMETHEUS / "prometheusrule.py")
    committed = (ROOT / "k8s/base/monitoring/prometheusrule.yaml").read_text()
    assert committed == generator.rendered(DEFAULT_RUNBOOK_BASE_URL), (
        "k8s/base/monitoring/prometheusrule.yaml is stale: run "
        "python deploy/prometheus/prometheusrule.py"
    )
    resource = yaml.safe_load(committed)
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    assert resource["spec"]["groups"] == generator.with_runbook_base(
        groups, DEFAULT_RUNBOOK_BASE_URL
    )
    # the operator's Prometheus may lack the external label: the links are written in
    links = [
        r["annotations"]["runbook_url"] for g in resource["spec"]["groups"] for r in g["rules"]
    ]
    assert all(link.startswith(f"{DEFAULT_RUNBOOK_BASE_URL}/operations.md#") for link in links)


def test_the_kubernetes_rules_take_the_base_url_given() -> None:
    generator = load_module(PROMETHEUS / "prometheusrule.py")
    resource = yaml.safe_load(generator.rendered("https://wiki.example.com/tagstream"))
    link = resource["spec"]["groups"][0]["rules"][0]["annotations"]["runbook_url"]
    assert link.startswith("https://wiki.example.com/tagstream/operations.md#")
