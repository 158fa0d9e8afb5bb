"""The layers, as rules on every import in the source, lazy ones inside functions included.

- ``shared`` is the library under everything: it imports neither a service nor the
  application layer.
- A service imports ``shared`` and itself only: services talk over topics, never by
  importing each other, and never reach up into the application layer.
- ``tagstream`` (CLI, local runner) may import both; nothing imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in ``path``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def forbidden_for(path: Path) -> tuple[str, ...]:
    """Top-level packages (or ``services.X``) the module at ``path`` must not import."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "shared":
        return ("services", "tagstream")
    if parts[0] == "services":
        own = parts[1] if len(parts) > 2 else None
        return ("tagstream", *(f"services.{s}" for s in SERVICES if s != own))
    return ()


def violations(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        banned = forbidden_for(path)
        for line, module in imported_modules(path):
            if any(module == b or module.startswith(f"{b}.") for b in banned):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("package", ["shared", "services"])
def test_no_import_crosses_a_layer(package: str) -> None:
    assert violations(package) == []


def test_the_rules_catch_a_crossing(tmp_path: Path) -> None:
    """The checker itself: each kind of crossing is reported, allowed imports are not."""
    cases = {
        ROOT / "shared" / "x.py": ("import services.review.auth", True),
        ROOT / "services" / "ingest" / "x.py": ("from services.review import auth", True),
        ROOT / "services" / "review" / "x.py": ("from tagstream.cli import common", True),
        ROOT / "services" / "review" / "y.py": ("from services.review import auth", False),
        ROOT / "tagstream" / "x.py": ("from services.review import cli", False),
    }
    for path, (source, crossing) in cases.items():
        module = tmp_path / "m.py"
        module.write_text(f"def f():\n    {source}\n")
        banned = forbidden_for(path)
        names = [name for _, name in imported_modules(module)]
        hit = any(n == b or n.startswith(f"{b}.") for n in names for b in banned)
        assert hit is crossing, (path, source)
