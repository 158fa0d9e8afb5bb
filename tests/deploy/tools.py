"""The command-line tools the deployment checks run, found or reported with how to get them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: tool -> the Debian package that provides it (`make system` installs these)
PACKAGES = {"promtool": "prometheus", "kubectl": "kubernetes-client"}


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: apt-get install {PACKAGES[name]} (or `make system`)")
    return found


def run(*args: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def markdown_sections(path: Path) -> dict[str, str]:
    """GitHub's anchors of the headings in a markdown file, each with its section's text.

    As GitHub makes them: lines starting with ``#`` inside fenced code are no headings
    (shell comments), and a repeated heading's anchor gets ``-1``, ``-2``...
    """
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            title = line.lstrip("#").strip().lower()
            anchor = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            unique, n = anchor, 0
            while unique in sections:
                n += 1
                unique = f"{anchor}-{n}"
            current = sections[unique] = []
        if current is not None:
            current.append(line)
    return {anchor: "\n".join(lines) for anchor, lines in sections.items()}


def markdown_anchors(path: Path) -> set[str]:
    """GitHub's anchors of the headings in a markdown file."""
    return set(markdown_sections(path))
