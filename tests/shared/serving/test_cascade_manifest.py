"""cascade.json: what a version's stage 2 is; its bytes feed the version id."""

from __future__ import annotations

import pytest

from shared.serving.cascade import CascadeManifest

MANIFEST = CascadeManifest(
    classes=["a", "b"],
    thresholds={"a": 0.9, "b": 0.95},
    max_tokens=64,
    artifacts={"head.onnx": "0" * 64},
    encoder={"source": "tiny"},
)


def test_the_manifest_round_trips_to_the_same_bytes() -> None:
    data = MANIFEST.to_bytes()
    assert CascadeManifest.from_bytes(data) == MANIFEST
    assert CascadeManifest.from_bytes(data).to_bytes() == data


def test_another_json_is_refused() -> None:
    with pytest.raises(ValueError, match="not a cascade manifest"):
        CascadeManifest.from_bytes(b'{"format": "something-else"}')
