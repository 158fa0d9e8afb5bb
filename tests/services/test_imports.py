"""No service imports scikit-learn, scipy, skl2onnx, onnx, matplotlib or joblib.

Each service's app and entry module is imported in a fresh interpreter. The feedback
service trains in a child process (``shared.ml.training_job``) and reads its drift
vocabulary from ``vocabulary.json``; only a version registered before that artifact
existed makes it unpickle the pipeline.
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
