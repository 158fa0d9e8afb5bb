"""``report.html``: the report's dict as one self-contained page with pictures.

Charts are drawn with matplotlib (the training extra's, already needed to train) and
embedded as PNG data URLs, so the page is a single file that opens anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RUN_STYLE = {"loop": ("#1f77b4", "loop (retraining on)"), "control": ("#999999", "control")}


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def charts(report: Mapping[str, Any]) -> dict[str, str]:
    """Data URLs of the figures: one line chart per metric, and the versions per window."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    windows = report["windows"]
    x = [w["index"] + 1 for w in windows]
    found = {}
    for key, title in (
        ("accuracy", "Accuracy of the model's answer"),
        ("auto_precision", "Precision of auto-accepted tags"),
        ("review_share", "Share routed to reviewers (review load)"),
    ):
        figure, axes = plt.subplots(figsize=(5.2, 3.0))
        for run, (colour, label) in RUN_STYLE.items():
            values = [w[run][key] if run in w else None for w in windows]
            points = [(i, v) for i, v in zip(x, values, strict=True) if v is not None]
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", color=colour, label=label)
        axes.set_title(title, fontsize=10)
        axes.set_xlabel("window of the stream (time order)", fontsize=8)
        axes.set_xticks(x)
        axes.set_ylim(0, 1.02)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="lower right" if key != "review_share" else "upper right")
        found[key] = _png(figure)
        plt.close(figure)
    versions = sorted({v for w in windows for v in w["loop"]["versions"]})
    figure, axes = plt.subplots(figsize=(5.2, 3.0))
    bottom = [0] * len(windows)
    for version in versions:
        counts = [w["loop"]["versions"].get(version, 0) for w in windows]
        axes.bar(x, counts, bottom=bottom, label=version)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    axes.set_title("Loop run: items decided by each model version", fontsize=10)
    axes.set_xlabel("window of the stream (time order)", fontsize=8)
    axes.set_xticks(x)
    if versions:
        axes.legend(fontsize=7)
    found["versions"] = _png(figure)
    plt.close(figure)
    return found


def _figure(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{_figure(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _analysis_text(analysis: Mapping[str, Any]) -> str:
    metrics = analysis.get("metrics") or {}
    if analysis.get("step") == "offline gate":
        overall = metrics.get("overall") or {}
        return f"gate {metrics.get('verdict')}: difference {_figure(overall.get('difference'))}"
    parts = []
    for name, check in metrics.items():
        values = ", ".join(
            f"{k} {_figure(v)}" for k, v in (check.get("values") or {}).items() if v is not None
        )
        parts.append(f"{name}: {check.get('verdict')} ({values})")
    return f"{analysis.get('step')}: {analysis.get('verdict')} — " + "; ".join(parts)


def render(report: Mapping[str, Any]) -> str:
    """The page (a string of HTML)."""
    images = charts(report)
    summary = report.get("summary", {})
    summary_rows = [
        [
            run,
            part.replace("_", " "),
            f["items"],
            f["accuracy"],
            f["auto_precision"],
            f["review_share"],
        ]
        for run, parts in summary.items()
        for part, f in parts.items()
    ]
    window_rows = [
        [
            w["index"] + 1,
            f"{w['first_created_on'][:10]} … {w['last_created_on'][:10]}",
            w["loop"]["accuracy"],
            w["control"]["accuracy"] if "control" in w else None,
            w["loop"]["auto_precision"],
            w["control"]["auto_precision"] if "control" in w else None,
            w["loop"]["review_share"],
            w["control"]["review_share"] if "control" in w else None,
            w["loop"]["items"],
        ]
        for w in report["windows"]
    ]
    rollout_blocks = (
        "".join(
            f"<li><b>{html.escape(r['version'])}</b> → <b class='{r['outcome']}'>{r['outcome']}</b>"
            f" (stable {html.escape(str(r.get('stable_version')))}): "
            f"{html.escape(str(r.get('reason') or ''))}<ul>"
            + "".join(f"<li>{html.escape(_analysis_text(a))}</li>" for a in r["analyses"])
            + "</ul></li>"
            for r in report["rollouts"]
        )
        or "<li>no rollout was decided</li>"
    )
    lineage_rows = [
        [v["version"], v["parent"], v["status"], v["gate"], v["gold_labels"], v["gold_hash"]]
        for v in report["lineage"]
    ]
    run_rows = [[name, *(run.get(k) for k in RUN_KEYS)] for name, run in report["runs"].items()]
    title = "tagstream: the data flywheel"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1200px; }}
h1 {{ font-size: 1.4em; margin-bottom: 0.2em; }} h2 {{ font-size: 1.1em; margin-top: 1.4em; }}
.charts {{ display: grid; grid-template-columns: repeat(2, 1fr); gap: 0.6em; }}
.charts img {{ width: 100%; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }}
th {{ background: #f2f2f2; }} .promoted {{ color: #2a7d2a; }}
.rolled_back, .rejected {{ color: #b22; }}
.note {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>{title}</h1>
<p class="note">{html.escape(str(report.get("description", "")))}</p>
<div class="charts">
<img alt="accuracy per window" src="{images["accuracy"]}">
<img alt="auto-accept precision per window" src="{images["auto_precision"]}">
<img alt="review share per window" src="{images["review_share"]}">
<img alt="model versions per window" src="{images["versions"]}">
</div>
<h2>Summary</h2>
{_table(["run", "part", "items", "accuracy", "auto precision", "review share"], summary_rows)}
<h2>Rollout decisions (loop run)</h2><ul>{rollout_blocks}</ul>
<h2>Lineage: which gold labels went into which version</h2>
{_table(["version", "parent", "status", "gate", "gold labels", "gold hash"], lineage_rows)}
<h2>Windows</h2>
{
        _table(
            [
                "window",
                "created_on",
                "accuracy loop",
                "accuracy control",
                "auto prec. loop",
                "auto prec. control",
                "review loop",
                "review control",
                "items",
            ],
            window_rows,
        )
    }
<h2>Runs</h2>
{_table(["run", *RUN_KEYS], run_rows)}
</body></html>
"""


RUN_KEYS = ("items_posted", "labels", "wrong_labels", "reports", "gold_labels", "duration_seconds")


def write_html(report: Mapping[str, Any], path: Path) -> Path:
    path.write_text(render(report), encoding="utf-8")
    return path
