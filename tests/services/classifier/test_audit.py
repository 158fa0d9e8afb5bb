"""Audit sample: some auto-accepted items also go to review, and stay auto."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from services.classifier.model import LoadedModel, load_serving
from services.classifier.service import Routing, classify_batch, in_audit_sample
from services.classifier.settings import ClassifierSettings
from shared.messages import Classification, ReviewRequest
from shared.registry import ModelRegistry
from tests.fixtures.db import migrated
from tests.services.classifier.conftest import clear_item, record, train_tiny


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    tmp = tmp_path_factory.mktemp("audit")
    settings = ClassifierSettings(
        environment="test",
        registry_dir=tmp / "registry",
        database_url=migrated(f"sqlite:///{tmp / 'db'}"),
    )
    train_tiny(settings, Path(tmp))
    with ModelRegistry.open(settings) as registry:
        serving = load_serving(registry)
    assert serving is not None
    return serving.stable


def test_the_sample_is_deterministic_and_near_the_share() -> None:
    ids = [uuid.uuid4().hex for _ in range(20_000)]
    picked = [i for i in ids if in_audit_sample(i, 0.02)]
    assert 0.015 < len(picked) / len(ids) < 0.025
    assert all(in_audit_sample(i, 0.02) for i in picked)
    assert not any(in_audit_sample(i, 0.0) for i in ids)


def test_audited_items_stay_auto_and_are_also_sent_to_review(model: LoadedModel) -> None:
    assert ClassifierSettings(environment="test").classifier_audit_share == 0.02
    routing = Routing(
        ("natural-language-processing", "computer-vision", "mlops", "other"),
        "classified",
        "review",
        "dlq",
        audit_share=0.5,
    )
    items = [clear_item(n) for n in range(40)]
    result = classify_batch([record(i.encode(), n) for n, i in enumerate(items)], model, routing)

    decisions = [Classification.decode(o.value) for o in result.outputs if o.topic == "classified"]
    requests = [ReviewRequest.decode(o.value) for o in result.outputs if o.topic == "review"]
    assert all(d.route == "auto" for d in decisions)
    expected = {i.item_id for i in items if in_audit_sample(i.item_id, 0.5)}
    assert expected
    assert {r.item_id for r in requests} == expected
    assert {r.reason for r in requests} == {"audit"}
