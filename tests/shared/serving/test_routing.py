from __future__ import annotations

import numpy as np

from shared.serving.routing import auto_mask, route_decisions

CLASSES = ["cv", "nlp", "banned"]
APPROVED = {"cv", "nlp"}
THRESHOLDS = {"cv": 0.8, "nlp": 0.6, "banned": 0.1}


def test_routes_by_threshold_of_the_top_tag() -> None:
    proba = np.array([[0.85, 0.1, 0.05], [0.7, 0.2, 0.1], [0.2, 0.65, 0.15]])
    decisions = route_decisions(proba, CLASSES, THRESHOLDS, APPROVED)
    assert [d.route for d in decisions] == ["auto", "review", "auto"]
    assert [d.tag for d in decisions] == ["cv", "cv", "nlp"]
    assert decisions[0].probabilities == {"cv": 0.85, "nlp": 0.1, "banned": 0.05}


def test_unapproved_tag_always_goes_to_review() -> None:
    proba = np.array([[0.0, 0.01, 0.99]])
    (decision,) = route_decisions(proba, CLASSES, THRESHOLDS, APPROVED)
    assert decision.route == "review"


def test_tag_without_threshold_goes_to_review() -> None:
    proba = np.array([[0.99, 0.01, 0.0]])
    (decision,) = route_decisions(proba, CLASSES, {}, APPROVED)
    assert decision.route == "review"


def test_vectorised_rule_agrees_with_decisions() -> None:
    rng = np.random.default_rng(3)
    proba = rng.dirichlet([1, 1, 1], size=500)
    mask = auto_mask(proba, CLASSES, THRESHOLDS, APPROVED)
    routes = [d.route == "auto" for d in route_decisions(proba, CLASSES, THRESHOLDS, APPROVED)]
    assert mask.tolist() == routes
