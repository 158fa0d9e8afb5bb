"""No service imports scikit-learn, scipy, skl2onnx, onnx, matplotlib or joblib.

Each service's app and entry module is imported in a fresh interpreter; the feedback
service loads the training stack only inside a retraining run (and joblib for its drift
score), never at import.
"""

from __future__ import annotations

import pytest

from tests.fixtures.imports import training_stack_after

SERVICES = ("ingest", "classifier", "review", "feedback", "rollout")


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_training_stack(service: str) -> None:
    loaded = training_stack_after(
        f"import services.{service}.app", f"import services.{service}.__main__"
    )
    assert loaded == set()
