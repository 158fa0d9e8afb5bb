"""Reading pyproject's dependencies and the lock files (requirements/*.txt) made from them."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK_DIR = ROOT / "requirements"
#: lock file -> the extras of pyproject it holds (base: the dependencies alone)
LOCKS = {"base": (), "train": ("train",), "dev": ("dev",)}
#: how uv marks a requirement that pyproject names itself, not one pulled in by another
DIRECT = "tagstream (pyproject.toml)"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s\\;]+)")


@dataclass(frozen=True)
class Pin:
    version: str
    direct: bool
    hashed: bool


def project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def direct_requirements(extras: tuple[str, ...]) -> list[Requirement]:
    """pyproject's dependencies plus those extras, ``tagstream[...]`` self-references
    expanded, as a resolver would."""
    meta = project()
    name = canonicalize_name(str(meta["name"]))
    optional: dict[str, list[str]] = meta.get("optional-dependencies", {})
    found: list[Requirement] = []
    seen: set[str] = set()

    def add(lines: list[str]) -> None:
        for line in lines:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == name:
                for extra in sorted(requirement.extras - seen):
                    seen.add(extra)
                    add(optional[extra])
            else:
                found.append(requirement)

    add(list(meta["dependencies"]))
    for extra in extras:
        seen.add(extra)
        add(optional[extra])
    return found


def read_lock(path: Path) -> dict[str, Pin]:
    """Each pinned distribution of a uv-compiled requirements file."""
    pins: dict[str, Pin] = {}
    blocks = re.split(r"\n(?=\S)", path.read_text())
    for block in blocks:
        match = _PIN.match(block)
        if match is None:
            continue
        pins[canonicalize_name(match.group(1))] = Pin(
            version=match.group(3), direct=DIRECT in block, hashed="--hash=sha256:" in block
        )
    return pins
