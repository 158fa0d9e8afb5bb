"""The command line starts fast: ``--help`` imports no command module, let alone training."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from tagstream.cli.main import COMMANDS, app, main
from tests.fixtures.imports import TRAINING_STACK, modules_after


def run_cli(*args: str) -> str:
    """Statements that run ``tagstream ARGS`` in-process, as the console script does."""
    return (
        "from tagstream.cli.main import app\n"
        f"try:\n    app({list(args)!r})\n"
        "except SystemExit as exc:\n    assert exc.code in (0, None), exc.code"
    )


def test_help_imports_no_command_module_and_no_training_stack() -> None:
    modules = modules_after(run_cli("--help"))
    assert not {m for m in modules if m.split(".")[0] in TRAINING_STACK}
    assert not {m for m in modules if m.startswith(("tagstream.cli.", "shared.", "services."))} - {
        "tagstream.cli.main"
    }


@pytest.mark.parametrize(
    "args", [("up", "--help"), ("model", "--help"), ("model", "train", "--help")]
)
def test_command_help_imports_no_training_stack(args: tuple[str, ...]) -> None:
    modules = modules_after(run_cli(*args))
    assert not {m for m in modules if m.split(".")[0] in TRAINING_STACK}
    assert f"tagstream.cli.{args[0]}" in modules  # the command itself did load


def eager_app() -> typer.Typer:
    """The CLI as it was built before it went lazy: every module imported up front."""
    from services.review import cli as users
    from tagstream.cli import db, dlq, items, model, rollout, show_settings, topics, up
    from tagstream.demo import cli as demo

    eager = typer.Typer(
        name="tagstream",
        help="tagstream: classify a live stream of content, review what is unsure, ship "
        "better models.",
        no_args_is_help=True,
    )
    eager.add_typer(model.app, name="model")
    eager.add_typer(db.app, name="db")
    eager.add_typer(topics.app, name="topics")
    eager.add_typer(dlq.app, name="dlq")
    eager.add_typer(users.app, name="users")
    eager.add_typer(show_settings.app, name="settings")
    eager.add_typer(items.app, name="items")
    eager.add_typer(rollout.app, name="rollout")
    eager.command("up")(up.up)
    eager.command("demo")(demo.demo)
    eager.callback()(main)  # the root's own options (--version)
    return eager


@pytest.mark.parametrize("args", [(), ("--help",), ("model",), ("up", "--help"), ("db", "--help")])
def test_the_lazy_cli_answers_as_the_eager_one_did(args: tuple[str, ...]) -> None:
    runner = CliRunner()
    lazy, eager = runner.invoke(app, list(args)), runner.invoke(eager_app(), list(args))
    assert (lazy.exit_code, lazy.output) == (eager.exit_code, eager.output)
    assert "Usage: tagstream" in lazy.output


def test_each_listed_help_is_the_one_its_module_declares() -> None:
    for name, lazy in COMMANDS.items():
        command = lazy.load(name)
        assert command.help is not None
        assert command.help.split("\n\n")[0].replace("\n", " ").strip() == lazy.help, name


def test_version_answers_without_loading_a_command() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("tagstream ")
    modules = modules_after(run_cli("--version"))
    assert not {m for m in modules if m.startswith("tagstream.cli.")} - {"tagstream.cli.main"}


def test_an_unknown_command_still_fails_with_a_suggestion() -> None:
    result = CliRunner().invoke(app, ["modle"])
    assert result.exit_code == 2
    assert "Did you mean 'model'?" in result.output
