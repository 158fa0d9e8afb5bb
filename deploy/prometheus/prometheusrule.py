"""Write k8s/base/monitoring/prometheusrule.yaml from tagstream/local/alerts.yml.

The alert rules are written once, in alerts.yml (checked and unit-tested with promtool;
package data, because ``tagstream up`` loads them into its Prometheus too);
the PrometheusRule for the Prometheus Operator carries the same groups. Run
``python deploy/prometheus/prometheusrule.py`` after editing alerts.yml; a test fails
while the two differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "tagstream/local/alerts.yml"
TARGET = ROOT / "k8s/base/monitoring/prometheusrule.yaml"
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


def rendered() -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
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
