"""Build the Grafana dashboards (``deploy/grafana/dashboards/*.json``) from this file.

Dashboards as code: edit the panels here, run ``python deploy/grafana/dashboards.py``
and commit the JSON beside it (a test fails while the two differ, and another checks
that every metric a panel queries is exported by a running service).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
RATE = "$__rate_interval"
WIDTH = 24


@dataclass
class Panel:
    title: str
    queries: list[tuple[str, str]]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    description: str = ""
    thresholds: list[tuple[float, str]] = field(default_factory=list)
    max_value: float | None = None

    def render(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
        steps += [{"color": color, "value": value} for value, color in self.thresholds]
        defaults: dict[str, Any] = {
            "unit": self.unit,
            "thresholds": {"mode": "absolute", "steps": steps},
        }
        if self.max_value is not None:
            defaults["max"] = self.max_value
        if self.kind == "timeseries" and self.thresholds:
            defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
        panel: dict[str, Any] = {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "targets": [
                {
                    "refId": chr(ord("A") + i),
                    "datasource": DATASOURCE,
                    "expr": expr,
                    "legendFormat": legend,
                    **({"instant": True, "format": "table"} if self.kind == "table" else {}),
                }
                for i, (expr, legend) in enumerate(self.queries)
            ],
        }
        if self.kind == "timeseries":
            panel["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}}
        return panel


def dashboard(uid: str, title: str, description: str, rows: list[list[Panel]]) -> dict[str, Any]:
    panels, y, panel_id = [], 0, 1
    for row in rows:
        x = 0
        for panel in row:
            panels.append(panel.render(panel_id, x, y))
            panel_id += 1
            x += panel.width
        assert x <= WIDTH, f"{title}: a row is wider than {WIDTH}"
        y += max(p.height for p in row)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["tagstream"],
        "timezone": "utc",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [
            {"type": "dashboards", "tags": ["tagstream"], "title": "tagstream", "asDropdown": True}
        ],
        "panels": panels,
    }


def quantiles(
    metric: str, by: str = "", qs: tuple[float, ...] = (0.5, 0.99)
) -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    legend = " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(",") if label.strip())
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RATE}])))",
            f"p{round(q * 100)} {legend}".strip(),
        )
        for q in qs
    ]


#: Every tagstream service's scrape job; probes are not traffic.
SERVICES = 'job=~"tagstream-.+"'
TRAFFIC = f'{SERVICES}, route!~"/healthz|/readyz|/metrics"'


def http_rows() -> list[list[Panel]]:
    """RED metrics of every HTTP service (shared/http/metrics.py), probes left out."""
    return [
        [
            Panel(
                "HTTP: requests per second by service and status",
                [
                    (
                        f"sum by (job, status) (rate(tagstream_http_requests_total{{{TRAFFIC}}}"
                        f"[{RATE}]))",
                        "{{job}} {{status}}",
                    )
                ],
                unit="reqps",
                width=8,
            ),
            Panel(
                "HTTP: server errors (5xx) share by service",
                [
                    (
                        f"sum by (job) (rate(tagstream_http_errors_total{{{TRAFFIC}}}[{RATE}])) "
                        f"/ sum by (job) (rate(tagstream_http_requests_total{{{TRAFFIC}}}"
                        f"[{RATE}]))",
                        "{{job}}",
                    )
                ],
                unit="percentunit",
                thresholds=[(0.01, "red")],
                width=8,
            ),
            Panel(
                "HTTP: p99 duration by service and route",
                [
                    (
                        "histogram_quantile(0.99, sum by (le, job, route) "
                        f"(rate(tagstream_http_request_duration_seconds_bucket{{{TRAFFIC}}}"
                        f"[{RATE}])))",
                        "{{job}} {{route}}",
                    )
                ],
                unit="s",
                width=8,
            ),
        ],
    ]


def resource_rows() -> list[list[Panel]]:
    """Each process's CPU, memory, file descriptors, garbage collection and restarts."""
    return [
        [
            Panel(
                "CPU per instance (cores)",
                [
                    (
                        f"rate(process_cpu_seconds_total{{{SERVICES}}}[{RATE}])",
                        "{{job}} {{instance}}",
                    )
                ],
                description="CPU seconds per second: 1 = one core busy.",
            ),
            Panel(
                "Resident memory per instance",
                [(f"process_resident_memory_bytes{{{SERVICES}}}", "{{job}} {{instance}}")],
                unit="bytes",
            ),
        ],
        [
            Panel(
                "Open file descriptors (share of the limit)",
                [
                    (
                        f"process_open_fds{{{SERVICES}}} / process_max_fds{{{SERVICES}}}",
                        "{{job}} {{instance}}",
                    )
                ],
                unit="percentunit",
                thresholds=[(0.8, "red")],
                description="Sockets (clients, broker, database) and files; at the limit "
                "every new connection fails.",
            ),
            Panel(
                "Python garbage collections per second by generation",
                [
                    (
                        "sum by (job, generation) "
                        f"(rate(python_gc_collections_total{{{SERVICES}}}[{RATE}]))",
                        "{{job}} gen {{generation}}",
                    )
                ],
                unit="ops",
            ),
        ],
        [
            Panel(
                "Restarts in the last hour",
                [
                    (
                        f"changes(process_start_time_seconds{{{SERVICES}}}[1h])",
                        "{{job}} {{instance}}",
                    )
                ],
                kind="stat",
                description="Times each instance's process started anew (its start time "
                "changed): crashes, OOM kills, failed probes, deploys.",
                thresholds=[(1, "orange"), (3, "red")],
            ),
            Panel(
                "Uptime per instance",
                [
                    (
                        f"time() - process_start_time_seconds{{{SERVICES}}}",
                        "{{job}} {{instance}}",
                    )
                ],
                unit="s",
            ),
        ],
    ]


def pipeline() -> dict[str, Any]:
    return dashboard(
        "tagstream-pipeline",
        "tagstream / pipeline",
        "Ingest to decision: throughput, routes, latency against the 100 ms budget, lag, "
        "dead letters; then every service's HTTP traffic, resources and restarts.",
        [
            [
                Panel(
                    "Services up",
                    [('up{job=~"tagstream-.+"}', "{{job}} {{instance}}")],
                    kind="stat",
                    width=24,
                    height=4,
                    description="1 = Prometheus scrapes the instance.",
                    thresholds=[],
                ),
            ],
            [
                Panel(
                    "Ingest: items per second by result",
                    [
                        (
                            f"sum by (result) (rate(tagstream_ingest_items_total[{RATE}]))",
                            "{{result}}",
                        )
                    ],
                    unit="ops",
                ),
                Panel(
                    "Ingest: requests per second by status",
                    [
                        (
                            f"sum by (status) (rate(tagstream_ingest_requests_total[{RATE}]))",
                            "{{status}}",
                        ),
                        (
                            f"sum(rate(tagstream_ingest_broker_unavailable_total[{RATE}]))",
                            "503 broker unavailable",
                        ),
                    ],
                    unit="reqps",
                ),
            ],
            [
                Panel(
                    "Ingest: rejections by reason",
                    [
                        (
                            f"sum by (reason) (rate(tagstream_ingest_rejections_total[{RATE}]))",
                            "{{reason}}",
                        )
                    ],
                    unit="ops",
                ),
                Panel(
                    "Ingest: produce latency (to the broker's ack)",
                    quantiles("tagstream_ingest_produce_latency_seconds"),
                    unit="s",
                ),
            ],
            [
                Panel(
                    "Classifier: decisions per second by route",
                    [
                        (
                            f"sum by (route) (rate(tagstream_classifier_items_total[{RATE}]))",
                            "{{route}}",
                        )
                    ],
                    unit="ops",
                ),
                Panel(
                    "Classifier: decisions per second by tag",
                    [
                        (
                            f"sum by (tag) (rate(tagstream_classifier_items_total[{RATE}]))",
                            "{{tag}}",
                        )
                    ],
                    unit="ops",
                ),
            ],
            [
                Panel(
                    "End-to-end latency (accepted to decided) vs the 100 ms budget",
                    quantiles("tagstream_classifier_end_to_end_latency_seconds"),
                    unit="s",
                    thresholds=[(0.1, "red")],
                    description="From ingest acceptance (received_at) to the decision.",
                ),
                Panel(
                    "Share routed to review",
                    [
                        (
                            "sum(rate(tagstream_classifier_items_total"
                            f'{{route="review"}}[{RATE}])) / '
                            f"sum(rate(tagstream_classifier_items_total[{RATE}]))",
                            "review share",
                        )
                    ],
                    unit="percentunit",
                    max_value=1,
                ),
            ],
            [
                Panel(
                    "Consumer lag of content.raw by partition",
                    [
                        (
                            "sum by (partition) (tagstream_classifier_consumer_lag)",
                            "p{{partition}}",
                        ),
                        ("sum(tagstream_classifier_consumer_lag)", "total"),
                    ],
                    description="Records not yet committed by the classifier group.",
                ),
                Panel(
                    "Partitions held per classifier instance",
                    [("tagstream_classifier_assigned_partitions", "{{instance}}")],
                    description="Replicas beyond the partition count hold none and idle.",
                ),
            ],
            [
                Panel(
                    "Batch size (records)",
                    quantiles("tagstream_classifier_batch_size"),
                ),
                Panel(
                    "Batch duration (fetched to committed) and inference time",
                    [
                        *quantiles("tagstream_classifier_batch_duration_seconds", qs=(0.99,)),
                        *quantiles(
                            "tagstream_classifier_inference_seconds",
                            by="model_version, role",
                            qs=(0.99,),
                        ),
                    ],
                    unit="s",
                ),
            ],
            [
                Panel(
                    "Dead letters per second",
                    [
                        (
                            "sum by (stage, reason_kind) "
                            f"(rate(tagstream_classifier_dlq_total[{RATE}]))",
                            "classifier {{stage}} {{reason_kind}}",
                        ),
                        (
                            f"sum by (topic) (rate(tagstream_feedback_dead_letters_total[{RATE}]))",
                            "feedback {{topic}}",
                        ),
                        (
                            "sum(rate(tagstream_review_requests_total"
                            f'{{result="dead_lettered"}}[{RATE}]))',
                            "review",
                        ),
                    ],
                    unit="ops",
                ),
                Panel(
                    "Classifier failures by kind",
                    [
                        (
                            f"sum by (kind) (rate(tagstream_classifier_errors_total[{RATE}]))",
                            "{{kind}}",
                        )
                    ],
                    unit="ops",
                ),
            ],
            *http_rows(),
            *resource_rows(),
        ],
    )


def review() -> dict[str, Any]:
    return dashboard(
        "tagstream-review",
        "tagstream / review",
        "Human review: the queue against its 1 h SLA, reviewers' throughput and speed, "
        "audit precision, user reports.",
        [
            [
                Panel(
                    "Items waiting for review",
                    [("max(tagstream_review_queue_depth)", "queue depth")],
                    kind="stat",
                    width=6,
                    height=5,
                    thresholds=[(500, "orange"), (2000, "red")],
                ),
                Panel(
                    "Oldest waiting item (SLA 1 h)",
                    [("max(tagstream_review_oldest_item_age_seconds)", "oldest")],
                    kind="stat",
                    unit="s",
                    width=6,
                    height=5,
                    thresholds=[(1800, "orange"), (3600, "red")],
                ),
                Panel(
                    "Labels per minute",
                    [(f"sum(rate(tagstream_review_labels_total[{RATE}])) * 60", "labels/min")],
                    kind="stat",
                    width=6,
                    height=5,
                ),
                Panel(
                    "Reviewers with labels",
                    [("max(tagstream_review_reviewers)", "reviewers")],
                    kind="stat",
                    width=6,
                    height=5,
                ),
            ],
            [
                Panel(
                    "Queue depth",
                    [("max(tagstream_review_queue_depth)", "waiting")],
                ),
                Panel(
                    "Oldest waiting item vs SLA",
                    [("max(tagstream_review_oldest_item_age_seconds)", "oldest")],
                    unit="s",
                    thresholds=[(3600, "red")],
                ),
            ],
            [
                Panel(
                    "Reviewers: labels per minute by source and audit",
                    [
                        (
                            "sum by (source, audit) "
                            f"(rate(tagstream_review_labels_total[{RATE}])) * 60",
                            "{{source}} audit={{audit}}",
                        )
                    ],
                ),
                Panel(
                    "Reviewers: time from claim to label",
                    quantiles("tagstream_review_decision_seconds", qs=(0.5, 0.9)),
                    unit="s",
                ),
            ],
            [
                Panel(
                    "Human decisions to content.classified per minute",
                    [
                        (
                            "sum by (agrees) "
                            f"(rate(tagstream_review_human_decisions_total[{RATE}])) * 60",
                            "agrees with the model={{agrees}}",
                        )
                    ],
                    description="One per label; agrees=false: the reviewer overrode the "
                    "model's top tag (an audit correction among them).",
                ),
                Panel(
                    "Ingest to human decision",
                    quantiles("tagstream_review_human_decision_latency_seconds", qs=(0.5, 0.9)),
                    unit="s",
                    description="How long downstream waits for a person's answer.",
                ),
            ],
            [
                Panel(
                    "Reviewers: claims by result",
                    [
                        (
                            f"sum by (result) (rate(tagstream_review_claims_total[{RATE}])) * 60",
                            "{{result}}",
                        )
                    ],
                    description="claimed, held (already holds one), empty (nothing to do); "
                    "per minute.",
                ),
                Panel(
                    "Audit precision of auto-accepted items",
                    [
                        (
                            'sum(increase(tagstream_review_audit_labels_total{match="true"}[1h]))'
                            " / sum(increase(tagstream_review_audit_labels_total[1h]))",
                            "matched the model",
                        )
                    ],
                    unit="percentunit",
                    max_value=1,
                    description="Share of audited auto decisions the reviewers confirmed.",
                ),
            ],
            [
                Panel(
                    "Reviewers: agreement on items labeled twice or more",
                    [
                        (
                            "max(tagstream_review_agreement)"
                            " and max(tagstream_review_doubly_labeled_items) > 0",
                            "all labels match",
                        )
                    ],
                    unit="percentunit",
                    max_value=1,
                    description="With TAGSTREAM_REVIEW_LABELS_PER_ITEM >= 2.",
                ),
                Panel(
                    "Reviewers: items labeled twice or more",
                    [("max(tagstream_review_doubly_labeled_items)", "items")],
                ),
            ],
            [
                Panel(
                    "Review requests consumed by result",
                    [
                        (
                            f"sum by (result) (rate(tagstream_review_requests_total[{RATE}]))",
                            "{{result}}",
                        )
                    ],
                    unit="ops",
                ),
                Panel(
                    "User reports by result; gold labels by source",
                    [
                        (
                            f"sum by (result) (rate(tagstream_feedback_reports_total[{RATE}]))",
                            "report {{result}}",
                        ),
                        (
                            f"sum by (source) (rate(tagstream_feedback_labels_total[{RATE}]))",
                            "gold {{source}}",
                        ),
                        (
                            f"sum by (outcome) (rate(tagstream_feedback_conflicts_total[{RATE}]))",
                            "conflict {{outcome}}",
                        ),
                    ],
                    unit="ops",
                ),
            ],
        ],
    )


def models() -> dict[str, Any]:
    return dashboard(
        "tagstream-models",
        "tagstream / models",
        "Model versions served, canary weight and rollout phase, analysis verdicts, "
        "online accuracy, agreement, drift and retraining.",
        [
            [
                Panel(
                    "Versions served by the classifiers",
                    [("sum by (model_version, role) (tagstream_classifier_model_info)", "")],
                    kind="table",
                    width=8,
                    description="Instances serving each version in each role.",
                ),
                Panel(
                    "Rollout phase",
                    [("max by (model_version, phase) (tagstream_rollout_phase) == 1", "")],
                    kind="table",
                    width=8,
                ),
                Panel(
                    "Canary weight",
                    [
                        (
                            "max by (model_version) (tagstream_rollout_canary_weight)",
                            "controller {{model_version}}",
                        ),
                        (
                            "avg by (model_version) (tagstream_classifier_canary_weight)",
                            "classifiers {{model_version}}",
                        ),
                    ],
                    unit="percentunit",
                    width=8,
                    max_value=1,
                ),
            ],
            [
                Panel(
                    "Rollout step",
                    [("max by (model_version) (tagstream_rollout_step)", "{{model_version}}")],
                ),
                Panel(
                    "Analysis verdicts by check",
                    [
                        (
                            "sum by (check, verdict) "
                            f"(increase(tagstream_rollout_analysis_total[{RATE}]))",
                            "{{check}} {{verdict}}",
                        )
                    ],
                ),
            ],
            [
                Panel(
                    "Rollouts by outcome (in the range shown)",
                    [
                        (
                            "sum by (outcome) "
                            "(increase(tagstream_rollout_rollouts_total[$__range]))",
                            "{{outcome}}",
                        )
                    ],
                    kind="stat",
                    width=8,
                ),
                Panel(
                    "Controller reaches Prometheus",
                    [("max(tagstream_rollout_prometheus_up)", "prometheus up")],
                    kind="stat",
                    width=8,
                ),
                Panel(
                    "Drift score (out-of-vocabulary share)",
                    [("max(tagstream_feedback_drift_score)", "drift")],
                    kind="stat",
                    unit="percentunit",
                    width=8,
                    thresholds=[(0.35, "red")],
                ),
            ],
            [
                Panel(
                    "Precision of auto-accepted items (audit sample), by version",
                    [
                        (
                            "max by (model_version) (tagstream_feedback_audit_precision)",
                            "{{model_version}}",
                        ),
                        (
                            "max by (model_version) (tagstream_feedback_audit_precision_lower)",
                            "{{model_version}} lower bound",
                        ),
                        (
                            "max by (model_version) (tagstream_feedback_audit_precision_upper)",
                            "{{model_version}} upper bound",
                        ),
                        ("max(tagstream_feedback_target_precision)", "target"),
                    ],
                    unit="percentunit",
                    max_value=1,
                    description="What users get: gold labels of the random audit sample of "
                    "auto-accepted items, with one-sided Wilson bounds. "
                    "TagstreamAutoPrecisionLow fires when the upper bound is under the target.",
                ),
                Panel(
                    "Audited auto-accepted items with a gold label",
                    [
                        (
                            "max by (model_version) (tagstream_feedback_audit_samples)",
                            "{{model_version}}",
                        ),
                        ("max(tagstream_feedback_audit_min_samples)", "alert minimum"),
                    ],
                ),
            ],
            [
                Panel(
                    "Canary vs stable on the same labelled items",
                    [
                        (
                            "max by (stable_version, canary_version, outcome) "
                            "(tagstream_feedback_paired_labels)",
                            "{{canary_version}} vs {{stable_version}}: {{outcome}}",
                        )
                    ],
                    description="Items both versions answered (one decided, the other on "
                    "content.shadow) and a person labelled; the rollout's paired accuracy "
                    "check reads these counts (canary_only vs stable_only decide it).",
                ),
            ],
            [
                Panel(
                    "Online accuracy by version and role",
                    [
                        (
                            "max by (model_version, role) (tagstream_feedback_online_accuracy)",
                            "{{model_version}} {{role}}",
                        )
                    ],
                    unit="percentunit",
                    max_value=1,
                    description="On every labelled item, mostly those routed to review (the "
                    "least confident): describes the review queue, not what users get.",
                ),
                Panel(
                    "Gold-labeled items behind the accuracy",
                    [
                        (
                            "max by (model_version, role) (tagstream_feedback_online_samples)",
                            "{{model_version}} {{role}}",
                        )
                    ],
                ),
            ],
            [
                Panel(
                    "Predictions per second by role and route",
                    [
                        (
                            "sum by (model_version, role, route) "
                            f"(rate(tagstream_classifier_predictions_total[{RATE}]))",
                            "{{model_version}} {{role}} {{route}}",
                        )
                    ],
                    unit="ops",
                ),
                Panel(
                    "Canary agrees with stable (top tag)",
                    [
                        (
                            "sum by (model_version) (rate(tagstream_classifier_agreement_total"
                            f'{{agreement="agree"}}[{RATE}])) / sum by (model_version) '
                            f"(rate(tagstream_classifier_agreement_total[{RATE}]))",
                            "{{model_version}}",
                        )
                    ],
                    unit="percentunit",
                    max_value=1,
                ),
            ],
            [
                Panel(
                    "Inference errors per second by version and role",
                    [
                        (
                            "sum by (model_version, role) "
                            f"(rate(tagstream_classifier_inference_errors_total[{RATE}]))",
                            "{{model_version}} {{role}}",
                        )
                    ],
                    unit="ops",
                ),
                Panel(
                    "Inference time per batch by version and role",
                    quantiles("tagstream_classifier_inference_seconds", by="model_version, role"),
                    unit="s",
                ),
            ],
            [
                Panel(
                    "Retraining runs by trigger and result",
                    [
                        (
                            "sum by (trigger, result) "
                            "(increase(tagstream_feedback_retrain_runs_total[$__range]))",
                            "{{trigger}} {{result}}",
                        )
                    ],
                    kind="stat",
                    width=24,
                    height=5,
                ),
            ],
        ],
    )


DASHBOARDS = {"pipeline": pipeline, "review": review, "models": models}


def rendered() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{name}.json": json.dumps(build(), indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
