"""The running classifier serves from onnxruntime alone: no training stack in its memory.

Import checks (``tests/services/test_imports.py``) cover what a module imports; this one
covers what a real ``python -m services.classifier`` process has mapped after it loaded a
registered model and classified with it, which catches a lazy import on the serving path
too. Compiled extensions are what the training stack cannot load without: scikit-learn,
scipy and matplotlib each map shared objects the moment they are imported.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.settings import Settings
from tests.services.classifier.conftest import (
    ClassifierProcess,
    classifier_settings,
    clear_item,
    produce,
    train_tiny,
)

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc"),
]

# Distribution folders as they appear in site-packages (``scipy.libs`` holds its BLAS).
TRAINING_PACKAGES = {"sklearn", "scikit_learn", "scipy", "matplotlib", "onnx", "skl2onnx"}


def training_packages_mapped(pid: int) -> set[str]:
    """Training-stack packages with a file mapped into process ``pid``'s memory."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = Path(line.split()[-1]).parts
        if "site-packages" not in parts:
            continue
        index = parts.index("site-packages")
        if index + 1 < len(parts):
            package = parts[index + 1].removesuffix(".libs")
            if package in TRAINING_PACKAGES:
                found.add(package)
    return found


async def test_a_serving_classifier_maps_no_training_stack(
    topics: Settings, tmp_path: Path, processes: list[ClassifierProcess]
) -> None:
    settings = classifier_settings(topics)
    train_tiny(settings, tmp_path)  # this test process now holds the training stack
    assert {"sklearn", "scipy"} <= training_packages_mapped(os.getpid())  # the check sees it

    classifier = ClassifierProcess(settings, tmp_path, "footprint").start()
    processes.append(classifier)
    await produce(settings, settings.topic_raw, [clear_item(n) for n in range(5)])
    served = await classifier.wait_until("tagstream_classifier_items_total", 5, within=60)
    assert served >= 5, classifier.logs()[-3000:]

    assert classifier.process is not None
    assert training_packages_mapped(classifier.process.pid) == set()
