"""What the checks conclude: one :class:`CheckResult` per check, and the overall verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Verdict = Literal["pass", "fail", "inconclusive", "skipped"]
Overall = Literal["pass", "fail", "inconclusive", "hold"]
WAITING_FOR_LABELS = "waiting for labels"
"""How the detail of a check that is ``waiting_for_labels`` begins (text for people)."""


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict with the queries and values that drove it."""

    check: str
    verdict: Verdict
    queries: dict[str, str]
    values: dict[str, float | None]
    threshold: str
    detail: str
    waiting_for_labels: bool = False
    """An inconclusive verdict that only waits for labels: it holds, and is not counted."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: NaN and infinities become None; ``query`` is every query on a line.

        The stored and served form; ``waiting_for_labels`` is not part of it (its detail
        says so in words, and the overall verdict, ``hold``, is stored beside it).
        """
        data = asdict(self)
        del data["waiting_for_labels"]
        data["query"] = "\n".join(f"{name}: {q}" for name, q in self.queries.items())
        data["values"] = {
            k: v if v is None or math.isfinite(v) else None for k, v in self.values.items()
        }
        return data


def overall_verdict(results: Sequence[CheckResult]) -> Overall:
    """fail > hold (only waiting for labels) > inconclusive > pass; skipped never blocks.

    With no check passed at all (e.g. no results) the verdict is inconclusive.
    """
    if any(r.verdict == "fail" for r in results):
        return "fail"
    blocking = [r for r in results if r.verdict not in ("pass", "skipped")]
    if blocking and all(r.verdict == "inconclusive" and r.waiting_for_labels for r in blocking):
        return "hold"
    if blocking or not any(r.verdict == "pass" for r in results):
        return "inconclusive"
    return "pass"
