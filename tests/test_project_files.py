"""The project's basics stay true: licence, changelog, pre-commit hooks that lint as CI does."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from shared.version import __version__
from tests.fixtures.data import REPO


def test_licence_is_mit_for_the_tagstream_authors() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "tagstream authors" in text


def test_changelog_has_the_installed_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {__version__.split('+')[0]}" in text


def hook_commands() -> list[list[str]]:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    return [shlex.split(hook["entry"]) for repo in config["repos"] for hook in repo["hooks"]]


def test_pre_commit_runs_every_make_lint_check_from_the_venv() -> None:
    commands = hook_commands()
    for command in commands:
        assert Path(command[0]).parts[:2] == (".venv", "bin"), command
        assert (REPO / command[0]).exists(), command[0]
    ran = {(Path(command[0]).name, *command[1:2]) for command in commands}
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for tool in (("ruff", "check"), ("ruff", "format"), ("mypy",)):
        assert tool in {r[: len(tool)] for r in ran}, tool
        assert f"$(BIN)/{' '.join(tool)}" in makefile  # the same check `make lint` runs
