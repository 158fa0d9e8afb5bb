"""The project's basics stay true: licence, changelog, pre-commit hooks that lint as CI does."""

from __future__ import annotations

import re
import shlex
import tomllib
from datetime import date
from pathlib import Path

import yaml

from shared.version import __version__
from tests.fixtures.data import REPO


def test_licence_is_mit_for_the_tagstream_authors() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "tagstream authors" in text


RELEASE = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", re.MULTILINE)


def test_changelog_has_the_installed_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert __version__.split("+")[0] in {version for version, _ in RELEASE.findall(text)}


def test_the_version_in_pyproject_is_the_newest_release_under_an_unreleased_section() -> None:
    """The one version (pyproject; shared.version reads it installed) is the top release."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = RELEASE.findall(text)
    assert releases, "no '## [X.Y.Z] - YYYY-MM-DD' section in CHANGELOG.md"
    assert releases[0][0] == project["version"], "bump pyproject's version with the changelog"
    assert text.index("## Unreleased") < text.index(f"## [{releases[0][0]}]")
    dates = [date.fromisoformat(day) for _, day in releases]
    assert dates == sorted(dates, reverse=True), "releases newest first"
    versions = [tuple(map(int, v.split("."))) for v, _ in releases]
    assert versions == sorted(versions, reverse=True)
    # the production overlay deploys the images of the release
    overlay = (REPO / "k8s/overlays/prod/kustomization.yaml").read_text(encoding="utf-8")
    tags = {i["newTag"] for i in yaml.safe_load(overlay)["images"]}
    assert tags == {project["version"]}


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
