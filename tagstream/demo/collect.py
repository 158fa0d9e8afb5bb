"""What a run leaves behind, read once its replay settled: the rollout service's
decisions, the registry's versions (with their lineage) and the gold labels stored."""

from __future__ import annotations

from typing import Any

import httpx

from tagstream.demo.settings import DemoSettings
from tagstream.demo.system import DemoSystem


def fetch_rollouts(system: DemoSystem) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{system.url('rollout')}/v1/rollouts",
        headers={"Authorization": f"Bearer {system.admin_key}"},
        timeout=15,
    )
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["rollouts"]
    return found


def registry_versions(system: DemoSystem, model_name: str) -> list[dict[str, Any]]:
    """Every version of the run's registry, as ``tagstream model show --json`` has it."""
    from shared.db.session import make_engine
    from shared.registry import ModelRegistry

    engine = make_engine(system.database_url)
    try:
        registry = ModelRegistry(engine, system.registry_dir, model_name)
        return [
            v.model_dump(mode="json", exclude={"model_card", "artifacts"})
            for v in sorted(registry.list_versions(), key=lambda v: v.created_at)
        ]
    finally:
        engine.dispose()


def gold_labels(system: DemoSystem, settings: DemoSettings) -> int:
    """Gold labels the run's feedback store holds (what a retrain would learn from)."""
    from services.feedback.repository import FeedbackStore
    from shared.db.session import make_engine

    engine = make_engine(system.database_url)
    try:
        return FeedbackStore(engine, settings.approved_tags).gold_count()
    finally:
        engine.dispose()
