"""Write k8s/base/monitoring/prometheusrule.yaml from tagstream/local/alerts.yml.

The alert rules are written once, in alerts.yml (checked and unit-tested with promtool;
package data, because ``tagstream up`` loads them into its Prometheus too);
the PrometheusRule for the Prometheus Operator carries the same groups. Run
``python deploy/prometheus/prometheusrule.py`` after editing alerts.yml; a test fails
while the two differ.

Runbook links: alerts.yml takes their base from the evaluating Prometheus's external label
``runbook_base_url``; an operator's Prometheus in a cluster need not have it, so here the
base is written in: ``TAGSTREAM_RUNBOOK_BASE_URL`` when set, else the settings' default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "tagstream/local/alerts.yml"
TARGET = ROOT / "k8s/base/monitoring/prometheusrule.yaml"
#: What alerts.yml writes where the base URL goes (a Prometheus template).
RUNBOOK_BASE = "{{ $externalLabels.runbook_base_url }}"
HEADER = (
    "# Generated from tagstream/local/alerts.yml by deploy/prometheus/prometheusrule.py;\n"
    "# edit alerts.yml and re-run it. Your Prometheus must select this PrometheusRule\n"
    "# (ruleSelector; the kube-prometheus-stack chart wants the label release: <release>).\n"
)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _block_strings(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _block_strings)


def with_runbook_base(groups: Any, base_url: str) -> Any:
    """``groups`` with every runbook link made absolute under ``base_url``."""
    for group in groups:
        for rule in group["rules"]:
            annotations = rule.get("annotations", {})
            if "runbook_url" in annotations:
                annotations["runbook_url"] = annotations["runbook_url"].replace(
                    RUNBOOK_BASE, base_url
                )
    return groups


def rendered(base_url: str | None = None) -> str:
    """The PrometheusRule; ``base_url`` defaults to the ``runbook_base_url`` setting."""
    base_url = base_url or Settings().runbook_base_url
    groups = with_runbook_base(yaml.safe_load(RULES.read_text())["groups"], base_url)
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "tagstream"},
        "spec": {"groups": groups},
    }
    body = yaml.dump(resource, Dumper=_Dumper, sort_keys=False, width=100)
    return HEADER + body


if __name__ == "__main__":
    TARGET.write_text(rendered())
