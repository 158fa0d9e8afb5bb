"""What the controller does after an analysis, as a type; the text people read derives from it.

The controller dispatches on :attr:`RolloutDecision.action`; :attr:`RolloutDecision.text`
is what is stored with the analysis, logged, and kept as a rolled-back rollout's reason.
(Named apart from ``shared.serving.routing.Decision``, a model's decision on one item.)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, assert_never

from services.rollout.analysis import Overall


class Action(StrEnum):
    """What the controller does to the rollout after an analysis."""

    PROMOTE = "promote"
    ADVANCE = "advance"
    HOLD = "hold"
    ROLL_BACK = "roll back"


@dataclass(frozen=True)
class RolloutDecision:
    """The action after an analysis, with what its text needs."""

    action: Action
    step: str | None = None
    """The step advanced to (ADVANCE) or held at (HOLD)."""
    cause: Literal["failed", "inconclusive"] | None = None
    """Which limit a ROLL_BACK reached, with the ``count`` that reached ``limit``."""
    count: int = 0
    limit: int = 0

    @property
    def text(self) -> str:
        match self.action:
            case Action.PROMOTE:
                return "promote"
            case Action.ADVANCE:
                return f"advance to {self.step}"
            case Action.HOLD:
                return f"hold at {self.step}"
            case Action.ROLL_BACK:
                return f"roll back: {self.count} {self.cause} analyses (limit {self.limit})"
            case _:
                assert_never(self.action)


def decide(
    verdict: Overall,
    *,
    failures: int,
    inconclusives: int,
    failure_limit: int,
    inconclusive_limit: int,
    step: str,
    next_step: str | None,
) -> RolloutDecision:
    """The action after an analysis whose overall ``verdict`` is given.

    ``failures`` and ``inconclusives`` count this analysis already; ``next_step`` is None
    on the last step, where a pass promotes. A pass always moves on; otherwise a limit
    reached rolls back (failures first), and anything else holds at ``step``.
    """
    if verdict == "pass":
        if next_step is None:
            return RolloutDecision(Action.PROMOTE)
        return RolloutDecision(Action.ADVANCE, step=next_step)
    if failures >= failure_limit:
        return RolloutDecision(
            Action.ROLL_BACK, cause="failed", count=failures, limit=failure_limit
        )
    if inconclusives >= inconclusive_limit:
        return RolloutDecision(
            Action.ROLL_BACK, cause="inconclusive", count=inconclusives, limit=inconclusive_limit
        )
    return RolloutDecision(Action.HOLD, step=step)
