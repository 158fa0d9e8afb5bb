"""The model card: what a version is, what it learned from, how good it is (markdown)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from shared.ml.calibration import Calibration
from shared.ml.data import Splits, ValidationSummary
from shared.ml.evaluation import EvaluationReport
from shared.ml.onnx_export import ParityReport
from shared.registry import version_id

if TYPE_CHECKING:
    from shared.ml.checks import ModelChecks


def render_model_card(
    *,
    model_name: str,
    onnx_bytes: bytes,
    data_location: str,
    data_hash: str,
    summary: ValidationSummary,
    splits: Splits,
    params: Mapping[str, object],
    report: EvaluationReport,
    calibration: Calibration,
    parity: Mapping[str, ParityReport],
    parent_version: str | None,
    gate: Mapping[str, Any],
    checks: ModelChecks | None = None,
    cascade: Mapping[str, Any] | None = None,
    cascade_manifest: bytes | None = None,
) -> str:
    env = Environment(  # renders markdown (autoescape below), never served as HTML  # nosec B701
        loader=PackageLoader("shared.ml", "templates"),
        undefined=StrictUndefined,
        autoescape=False,  # markdown, not HTML
        keep_trailing_newline=True,
    )
    tolerance = next(iter(parity.values())).tolerance if parity else None
    return env.get_template("model_card.md.j2").render(
        model_name=model_name,
        version=version_id(onnx_bytes, cascade_manifest),
        onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        data_location=data_location,
        data_hash=data_hash,
        summary=summary,
        splits=splits,
        params=params,
        report=report,
        calibration=calibration,
        parity=parity,
        tolerance=tolerance,
        parent_version=parent_version,
        gate=gate,
        checks=checks,
        cascade=cascade,
        gate_rows=[("overall", gate["overall"]), *gate["slices"].items()]
        if "overall" in gate
        else [],
    )
