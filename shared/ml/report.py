"""Rendering of an :class:`EvaluationReport`: JSON, two PNG pictures and an HTML page.

Every file is a pure function of its inputs (no timestamps, no PNG software or date
metadata), because the registry stores artifacts under their sha256.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from shared.ml.evaluation import EvaluationReport

if TYPE_CHECKING:
    from shared.ml.checks import ModelChecks
    from shared.ml.scorecard import Scorecard

REPORT_JSON = "report.json"
CONFUSION_PNG = "confusion_matrix.png"
CURVE_PNG = "precision_coverage.png"
REPORT_HTML = "report.html"

_DPI = 110
# Without Software (and with no date, which PNG output never gets) the bytes repeat.
_PNG_METADATA: dict[str, str | None] = {"Software": None}


def write_report(
    report: EvaluationReport,
    out_dir: Path,
    *,
    title: str,
    context: Mapping[str, object] | None = None,
    checks: ModelChecks | None = None,
    scorecards: Sequence[Scorecard] = (),
    problems: Sequence[str] = (),
) -> dict[str, Path]:
    """Write the report files into ``out_dir`` and return file name -> path.

    ``context`` (model version, data hash, ...) is shown in the HTML page only, so
    ``report.json`` depends on the metrics alone. ``checks`` (baselines, can-it-overfit,
    behavioural tests) go under ``checks`` in ``report.json`` and in the page, its problems
    listed at the top with ``problems``; ``scorecards`` (headline figures with intervals)
    default to the checks' baselines and go under ``scorecards``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in (REPORT_JSON, CONFUSION_PNG, CURVE_PNG, REPORT_HTML)}

    cards = list(scorecards) or (list(checks.baselines) if checks else [])
    shown = [*problems, *(checks.problems if checks else [])]
    record: dict[str, Any] = report.model_dump(mode="json")
    if checks is not None:
        record["checks"] = checks.model_dump(mode="json")
    if cards:
        record["scorecards"] = [card.model_dump(mode="json") for card in cards]
    if shown:
        record["problems"] = shown
    payload = json.dumps(record, sort_keys=True, indent=2, allow_nan=False)
    paths[REPORT_JSON].write_text(payload + "\n", encoding="utf-8")
    _save(_confusion_figure(report), paths[CONFUSION_PNG])
    _save(_curve_figure(report), paths[CURVE_PNG])
    html = _render_html(
        report,
        title=title,
        context=context or {},
        extras={"checks": checks, "scorecards": cards, "problems": shown},
    )
    paths[REPORT_HTML].write_text(html, encoding="utf-8")
    return paths


def operating_point_label(report: EvaluationReport) -> str:
    """How the auto-accept thresholds read in one phrase: one global value or per class."""
    used = {value for value in report.auto.thresholds.values() if value is not None}
    if not used:
        return "no tag auto-accepted"
    if len(used) == 1:
        return f"threshold {used.pop():.3f}"
    return "per-class thresholds"


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)  # attaches an Agg canvas without pyplot's global state
    figure.savefig(path, format="png", dpi=_DPI, metadata=_PNG_METADATA)


def _confusion_figure(report: EvaluationReport) -> Figure:
    labels = report.confusion_matrix.labels
    counts = np.array(report.confusion_matrix.matrix, dtype=float).reshape(len(labels), -1)
    row_totals = counts.sum(axis=1, keepdims=True)
    # Colour by share of the true tag so rare tags are as readable as common ones.
    shares = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)

    side = 2.5 + 0.9 * len(labels)
    figure = Figure(figsize=(side + 1.5, side), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    colorbar = figure.colorbar(image, ax=axes, shrink=0.8)
    colorbar.set_label("share of true tag")
    for row in range(len(labels)):
        for col in range(len(labels)):
            colour = "white" if shares[row, col] > 0.5 else "black"
            axes.text(col, row, f"{int(counts[row, col])}", ha="center", va="center", color=colour)
    axes.set_xticks(range(len(labels)), labels, rotation=35, ha="right", rotation_mode="anchor")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted tag")
    axes.set_ylabel("true tag")
    axes.set_title(f"Confusion matrix (n={report.n_items})")
    return figure


def _curve_figure(report: EvaluationReport) -> Figure:
    figure = Figure(figsize=(7, 5), layout="constrained")
    axes = figure.add_subplot()
    points = [
        (p.coverage, p.precision) for p in report.precision_coverage if p.precision is not None
    ]
    axes.plot(
        [coverage for coverage, _ in points],
        [precision for _, precision in points],
        color="tab:blue",
        label="one global threshold, swept",
    )
    auto = report.auto
    if auto.precision is not None:
        axes.scatter(
            [auto.coverage],
            [auto.precision],
            s=70,
            color="tab:red",
            zorder=3,
            label=(
                f"operating point ({operating_point_label(report)}): "
                f"coverage {auto.coverage:.1%}, precision {auto.precision:.1%}"
            ),
        )
    lowest = min([precision for _, precision in points] + [1.0])
    axes.set_xlim(-0.02, 1.02)
    axes.set_ylim(max(0.0, lowest - 0.05), 1.01)
    axes.set_xlabel("coverage (share of items auto-accepted)")
    axes.set_ylabel("precision of auto-accepted items")
    axes.set_title("Precision vs coverage of auto-acceptance")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize="small")
    return figure


def _render_html(
    report: EvaluationReport,
    *,
    title: str,
    context: Mapping[str, object],
    extras: Mapping[str, object],
) -> str:
    environment = Environment(
        loader=PackageLoader("shared.ml", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = _number
    environment.filters["pct"] = _percent
    template = environment.get_template("report.html.j2")
    return template.render(
        report=report,
        title=title,
        context=list(context.items()),
        operating_point=operating_point_label(report),
        confusion_png=CONFUSION_PNG,
        curve_png=CURVE_PNG,
        report_json=REPORT_JSON,
        **extras,
    )


def _number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"
