"""Artifact files on disk: ``<root>/<model name>/<version>/<artifact name>``, verified on read.

Large artifacts (a cascade's sentence encoder: 20-90 MB, the same in every version trained
with it) are stored once, under ``<root>/<model name>/blobs/<sha256>``, and hard-linked
into each version's folder: every version still reads its own path, verified by its
hash, but a hundred retrains cost one copy. Where hard links are not possible (another
file system) the version gets a plain copy.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from shared.registry.errors import ArtifactCorrupted, RegistryError
from shared.registry.models import ArtifactRef

# One path segment, no hidden files (temporary files start with a dot), no traversal.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_CHUNK = 1 << 20
SHARED_MIN_BYTES = 1 << 20
"""Artifacts this large or larger are stored once by content and linked per version."""
BLOBS = "blobs"


def is_safe_segment(name: str) -> bool:
    """Whether ``name`` can be used as one folder or file name under the registry root."""
    return _SEGMENT.fullmatch(name) is not None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore:
    """Writes artifacts atomically and hands them out only if they match their recorded hash."""

    def __init__(self, root: Path, model_name: str) -> None:
        if not is_safe_segment(model_name):
            raise RegistryError(f"model name {model_name!r} cannot be used as a folder name")
        self._model_dir = Path(root) / model_name

    def create(self) -> None:
        self._model_dir.mkdir(parents=True, exist_ok=True)

    def version_dir(self, version: str) -> Path:
        return self._model_dir / version

    def write(self, version: str, name: str, data: bytes) -> None:
        """Write ``data`` so that readers see either no file or the whole file, never a part."""
        folder = self.version_dir(version)
        folder.mkdir(parents=True, exist_ok=True)
        if len(data) >= SHARED_MIN_BYTES and self._link_shared(folder / name, data):
            return
        self._write_file(folder, name, data)

    def _link_shared(self, target: Path, data: bytes) -> bool:
        """Hard-link ``target`` to the blob holding ``data`` (written first if new)."""
        digest = sha256_hex(data)
        blobs = self._model_dir / BLOBS
        blob = blobs / digest
        if not (blob.is_file() and self._digest(blob) == digest):
            blobs.mkdir(parents=True, exist_ok=True)
            self._write_file(blobs, digest, data)
        temp = target.with_name(f".{target.name}.link")
        temp.unlink(missing_ok=True)
        try:
            os.link(blob, temp)
        except OSError:
            return False  # e.g. another file system: a plain copy instead
        os.replace(temp, target)
        return True

    @staticmethod
    def _digest(path: Path) -> str:
        digest = hashlib.sha256()
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    @staticmethod
    def _write_file(folder: Path, name: str, data: bytes) -> None:
        handle, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as temp:
                temp.write(data)
                temp.flush()
                os.fsync(temp.fileno())
            os.replace(temp_name, folder / name)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def verified_path(self, version: str, ref: ArtifactRef) -> Path:
        path = self.version_dir(version) / ref.name
        try:
            actual = self._digest(path)
        except FileNotFoundError:
            raise ArtifactCorrupted(f"artifact {path} is missing") from None
        self._check(path, actual, ref)
        return path

    def verified_bytes(self, version: str, ref: ArtifactRef) -> bytes:
        path = self.version_dir(version) / ref.name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactCorrupted(f"artifact {path} is missing") from None
        # Hash the bytes handed back, not the file again: no window for a swap in between.
        self._check(path, sha256_hex(data), ref)
        return data

    @staticmethod
    def _check(path: Path, actual: str, ref: ArtifactRef) -> None:
        if actual != ref.sha256:
            raise ArtifactCorrupted(
                f"artifact {path} has sha256 {actual}, but the registry recorded {ref.sha256}"
            )
