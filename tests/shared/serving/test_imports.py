"""The serving package loads nothing of the training stack."""

from __future__ import annotations

import pkgutil

import shared.serving
from tests.fixtures.imports import loaded_after, training_stack_after


def test_every_serving_module_imports_without_the_training_stack() -> None:
    modules = [m.name for m in pkgutil.iter_modules(shared.serving.__path__, "shared.serving.")]
    assert "shared.serving.onnx_tagger" in modules
    assert training_stack_after(*(f"import {m}" for m in modules)) == set()


def test_the_check_sees_the_training_stack_when_it_is_loaded() -> None:
    """Guards the guard: the same check on a training module does find scikit-learn."""
    assert {"sklearn", "onnx"} <= training_stack_after("import shared.ml.onnx_export")
    assert "onnxruntime" in loaded_after("import shared.serving.onnx_tagger")
