"""What the checks conclude: one :class:`CheckResult` per check, and the overall verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Verdict = Literal["pass", "fail", "inconclusive", "skipped"]
Overall = Literal["pass", "fail", "inconclusive", "hold"]
WAITING_FOR_LABELS = "waiting for labels"
"""Start of the detail of an online_accuracy check that holds the final step."""


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict with the queries and values that drove it."""

    check: str
    verdict: Verdict
    queries: dict[str, str]
    values: dict[str, float | None]
    threshold: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: NaN and infinities become None; ``query`` is every query on a line."""
        data = asdict(self)
        data["query"] = "\n".join(f"{name}: {q}" for name, q in self.queries.items())
        data["values"] = {
            k: v if v is None or math.isfinite(v) else None for k, v in self.values.items()
        }
        return data


def is_waiting_for_labels(result: CheckResult) -> bool:
    return (
        result.check == "online_accuracy"
        and result.verdict == "inconclusive"
        and result.detail.startswith(WAITING_FOR_LABELS)
    )


def overall_verdict(results: Sequence[CheckResult]) -> Overall:
    """fail > hold (only waiting for labels) > inconclusive > pass; skipped never blocks.

    With no check passed at all (e.g. no results) the verdict is inconclusive.
    """
    if any(r.verdict == "fail" for r in results):
        return "fail"
    blocking = [r for r in results if r.verdict not in ("pass", "skipped")]
    if blocking and all(is_waiting_for_labels(r) for r in blocking):
        return "hold"
    if blocking or not any(r.verdict == "pass" for r in results):
        return "inconclusive"
    return "pass"
