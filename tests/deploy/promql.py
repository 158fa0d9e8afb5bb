"""Metric names a PromQL expression reads, and the names a service's /metrics exposes.

Small on purpose: tagstream's dashboards and rules use selectors, functions, aggregations
with ``by``/``without``, ranges, subqueries, ``offset`` and binary operators with
``on``/``ignoring``/``group_*`` — all handled here. Label matchers, strings, durations,
numbers, keywords and Grafana variables are dropped; what remains followed by ``(`` is a
function, everything else is a metric name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
ALERTS = ROOT / "tagstream/local/alerts.yml"

#: Series Prometheus makes itself for every target; no service exports them.
PROMETHEUS_OWN = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"offset", "bool", "inf", "nan", "atan2", "start", "end"}
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPINGS = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_VARIABLES = re.compile(r"\$\{?\w+\}?")
_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_DURATION_OR_NUMBER = re.compile(r"^\d")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (not functions, labels or keywords)."""
    text = _STRINGS.sub(" ", expr)
    text = _VARIABLES.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPINGS.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS or _DURATION_OR_NUMBER.match(name):
            continue
        names.add(name)
    return names


def dashboard_queries(paths: Iterable[Path] = DASHBOARDS) -> dict[str, list[str]]:
    """``<file>: <panel title>`` -> its PromQL expressions, for every Grafana panel."""
    import json

    found: dict[str, list[str]] = {}

    def walk(panels: list[dict[str, Any]], where: str) -> None:
        for panel in panels:
            exprs = [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
            if exprs:
                found[f"{where}: {panel.get('title')}"] = exprs
            walk(panel.get("panels", []), where)

    for path in paths:
        walk(json.loads(path.read_text())["panels"], path.name)
    return found


def rule_queries(path: Path = ALERTS) -> dict[str, list[str]]:
    """``<file>: <alert or record name>`` -> its expression, for every rule in ``path``."""
    groups = yaml.safe_load(path.read_text()).get("groups", [])
    return {
        f"{path.name}: {rule.get('alert') or rule.get('record')}": [rule["expr"]]
        for group in groups
        for rule in group["rules"]
    }


def used_names(sources: dict[str, list[str]]) -> dict[str, set[str]]:
    """Metric name -> where it is used."""
    used: dict[str, set[str]] = {}
    for where, exprs in sources.items():
        for expr in exprs:
            for name in metric_names(expr):
                used.setdefault(name, set()).add(where)
    return used


def exposed_names(exposition: str) -> set[str]:
    """Every series name an exposition can produce, from its ``# TYPE`` lines and samples.

    A labelled metric without samples yet still has its ``# TYPE`` line; a histogram's
    family name stands for its ``_bucket``, ``_sum`` and ``_count`` series.
    """
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind in ("histogram", "gaugehistogram"):
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
            elif kind == "summary":
                names |= {f"{name}_sum", f"{name}_count", f"{name}_created"}
            elif kind == "counter":
                names.add(f"{name.removesuffix('_total')}_created")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names
