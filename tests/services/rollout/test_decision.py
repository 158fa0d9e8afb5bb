"""The controller's decision after an analysis: the action is a type, the text derives from it.

The texts are stored with each analysis, served by the API and kept as a rolled-back
rollout's reason, so they are pinned here word for word.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.rollout.analysis import Overall
from services.rollout.decision import Action, RolloutDecision, decide

LIMITS = {"failure_limit": 2, "inconclusive_limit": 3}


def after(verdict: Overall, **counts: Any) -> RolloutDecision:
    given = {"failures": 0, "inconclusives": 0, "step": "10%", "next_step": "50%", **counts}
    return decide(verdict, **LIMITS, **given)


@pytest.mark.parametrize(
    ("decision", "action", "text"),
    [
        (after("pass"), Action.ADVANCE, "advance to 50%"),
        (after("pass", next_step=None, step="100%"), Action.PROMOTE, "promote"),
        (after("pass", failures=5, inconclusives=5), Action.ADVANCE, "advance to 50%"),
        (after("fail", failures=1), Action.HOLD, "hold at 10%"),
        (after("fail", failures=2), Action.ROLL_BACK, "roll back: 2 failed analyses (limit 2)"),
        (after("inconclusive", inconclusives=2), Action.HOLD, "hold at 10%"),
        (
            after("inconclusive", inconclusives=3),
            Action.ROLL_BACK,
            "roll back: 3 inconclusive analyses (limit 3)",
        ),
        (
            after("fail", failures=2, inconclusives=3),
            Action.ROLL_BACK,
            "roll back: 2 failed analyses (limit 2)",
        ),
        (after("hold"), Action.HOLD, "hold at 10%"),
        (after("hold", next_step=None), Action.HOLD, "hold at 10%"),
    ],
)
def test_the_action_and_its_text(decision: RolloutDecision, action: Action, text: str) -> None:
    assert decision.action is action
    assert decision.text == text
