"""Large artifacts (a cascade's encoder) are stored once and linked into every version."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.registry.errors import ArtifactCorrupted
from shared.registry.models import ArtifactRef
from shared.registry.storage import BLOBS, SHARED_MIN_BYTES, ArtifactStore, sha256_hex


def test_a_large_artifact_is_one_file_for_every_version(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, "m")
    store.create()
    big = b"x" * SHARED_MIN_BYTES
    store.write("v1", "encoder.onnx", big)
    store.write("v2", "encoder.onnx", big)
    one, two = store.version_dir("v1") / "encoder.onnx", store.version_dir("v2") / "encoder.onnx"
    assert one.stat().st_ino == two.stat().st_ino
    assert (tmp_path / "m" / BLOBS / sha256_hex(big)).stat().st_ino == one.stat().st_ino
    ref = ArtifactRef(name="encoder.onnx", sha256=sha256_hex(big), size_bytes=len(big))
    assert store.verified_bytes("v2", ref) == big


def test_a_small_artifact_stays_a_file_of_its_own(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, "m")
    store.write("v1", "head.onnx", b"small")
    store.write("v2", "head.onnx", b"small")
    assert (store.version_dir("v1") / "head.onnx").stat().st_ino != (
        store.version_dir("v2") / "head.onnx"
    ).stat().st_ino
    assert not (tmp_path / "m" / BLOBS).exists()


def test_a_corrupted_blob_is_rewritten_not_linked(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, "m")
    big = b"y" * SHARED_MIN_BYTES
    store.write("v1", "encoder.onnx", big)
    blob = tmp_path / "m" / BLOBS / sha256_hex(big)
    blob.unlink()
    blob.write_bytes(b"tampered")
    store.write("v2", "encoder.onnx", big)
    ref = ArtifactRef(name="encoder.onnx", sha256=sha256_hex(big), size_bytes=len(big))
    assert store.verified_bytes("v2", ref) == big
    (store.version_dir("v1") / "encoder.onnx").write_bytes(b"z")  # its old link target
    with pytest.raises(ArtifactCorrupted):
        store.verified_bytes("v1", ref)
