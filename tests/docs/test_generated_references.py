"""docs/configuration.md and docs/cli.md are what the code says now, and complete."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

import services
import tagstream
from tagstream.cli.up import SERVICES
from tagstream.docs import GENERATED, stale, write
from tagstream.docs.cli import render_cli
from tagstream.docs.configuration import render_configuration
from tagstream.settings_catalog import CATALOG, env_name
from tests.fixtures.data import REPO


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_the_committed_reference_is_current(name: str) -> None:
    committed = (REPO / name).read_text(encoding="utf-8")
    assert committed == GENERATED[name](), f"{name} is stale: run `make docs` and commit it"


def test_a_changed_reference_is_found_stale_and_rewritten(tmp_path: Path) -> None:
    assert sorted(stale(tmp_path)) == sorted(GENERATED)  # none written yet
    write(tmp_path)
    assert stale(tmp_path) == []
    path = tmp_path / "docs" / "cli.md"
    path.write_text(path.read_text(encoding="utf-8") + "hand edit\n", encoding="utf-8")
    assert stale(tmp_path) == ["docs/cli.md"]


def all_settings_classes() -> set[type[BaseSettings]]:
    # Import every settings module, so the answer does not depend on which tests ran first.
    for package in (services, tagstream):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if module.name.endswith(("settings", "_settings")):
                importlib.import_module(module.name)
    found, todo = set(), [BaseSettings]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.split(".")[0] in ("shared", "services", "tagstream"):
                found.add(sub)
            todo.append(sub)
    return found


def test_every_settings_class_and_service_is_in_the_catalog() -> None:
    assert {entry.load() for entry in CATALOG.values()} >= all_settings_classes()
    assert {name for name, _, _ in SERVICES} <= set(CATALOG)


def test_every_field_is_documented_with_a_description() -> None:
    text = render_configuration()
    for entry in CATALOG.values():
        cls = entry.load()
        for name, field in cls.model_fields.items():
            assert f"| `{env_name(cls, name)}` |" in text
            assert field.description, f"{cls.__name__}.{name} has no description"


def test_every_tagstream_variable_in_the_code_is_documented() -> None:
    text = render_configuration()
    for folder in ("shared", "services", "tagstream"):
        for path in (REPO / folder).rglob("*.py"):
            for name in re.findall(r"\bTAGSTREAM_[A-Z0-9_]*[A-Z0-9]\b", path.read_text("utf-8")):
                if not name.endswith("_"):  # a prefix in a sentence ("TAGSTREAM_INGEST_*")
                    assert f"`{name}`" in text, f"{name} ({path}) is not in configuration.md"


def test_every_command_is_documented() -> None:
    text = render_cli()
    for command in ("tagstream items send", "tagstream settings show", "tagstream model train"):
        assert f"`{command}`" in text
    assert "| `--rate <float range>` |" in text
