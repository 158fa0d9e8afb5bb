"""The PromQL name extraction the metric-name checks rely on."""

from __future__ import annotations

import pytest

from tests.deploy.promql import exposed_names, metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('up{job=~"tagstream-.+"} == 0', {"up"}),
        (
            "histogram_quantile(0.99, sum by (le) "
            "(rate(tagstream_classifier_end_to_end_latency_seconds_bucket[5m]))) > 0.1",
            {"tagstream_classifier_end_to_end_latency_seconds_bucket"},
        ),
        (
            "sum(a_total) > 1000 and deriv(sum(a_total)[10m:1m]) > 0",
            {"a_total"},
        ),
        (
            "(sum(rate(x_total[5m])) or vector(0))"
            ' + sum(rate(y_total{result="dead"}[$__rate_interval]))',
            {"x_total", "y_total"},
        ),
        (
            "sum by (model_version, role) (rate(e_total[5m])) / on (role) group_left (tag) "
            "sum without (instance) (rate(p_total[5m] offset 1h))",
            {"e_total", "p_total"},
        ),
        (
            'time() - max(last_seconds) > 300 and absent(up{job="tagstream-ingest"})',
            {"last_seconds", "up"},
        ),
        ('label_replace(m, "dst", "$1", "src", "(.*)")', {"m"}),
        ('max_over_time(acc{role="stable"}[1d]) - acc', {"acc"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_exposed_names_count_type_lines_and_histogram_series() -> None:
    exposition = "\n".join(
        [
            "# HELP a_total h",
            "# TYPE a_total counter",
            "# TYPE h_seconds histogram",
            "# TYPE g gauge",
            'g{x="1"} 2.0',
            "# TYPE plain_total counter",
            "plain_total 1.0",
        ]
    )
    names = exposed_names(exposition)
    assert {"a_total", "h_seconds_bucket", "h_seconds_count", "g", "plain_total"} <= names
    assert "h_seconds_total" not in names
