"""``tagstream --version``: the one version, from the installed distribution."""

from __future__ import annotations

from importlib.metadata import version

from typer.testing import CliRunner

from shared.version import __version__
from tagstream.cli.main import app


def test_version_prints_the_installed_distributions_version_and_exits() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"tagstream {version('tagstream')}\n"
    assert __version__ == version("tagstream")


def test_version_runs_no_command() -> None:
    result = CliRunner().invoke(app, ["--version", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("tagstream ")
