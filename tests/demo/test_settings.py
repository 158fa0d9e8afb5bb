"""--fast replaces the defaults, never a variable that is set."""

from __future__ import annotations

import pytest

from tagstream.demo.settings import FAST, DemoSettings, demo_settings


def test_fast_replaces_defaults_but_not_what_the_environment_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TAGSTREAM_DEMO_ITEMS_PER_SECOND", "2.5")
    monkeypatch.setenv("TAGSTREAM_DEMO_ROLLOUT_STEPS", "shadow,100")
    fast = demo_settings(fast=True)
    assert fast.demo_items_per_second == 2.5
    assert fast.demo_rollout_steps == ("shadow", "100")
    assert fast.demo_reviewer_seconds_per_item == FAST["demo_reviewer_seconds_per_item"]
    full = demo_settings(fast=False)
    assert (
        full.demo_reviewer_seconds_per_item
        == DemoSettings.model_fields["demo_reviewer_seconds_per_item"].default
    )
    assert full.demo_items_per_second == 2.5
