"""The ``tagstream`` command line: one entry point for every operator task.

Command modules are imported only when their command runs (or its ``--help`` is asked
for): ``tagstream --help`` lists the commands from the table below without importing any
of them, so it answers at once instead of after the Kafka clients, Alembic and the
training stack have loaded. ``tests/cli/test_main.py`` proves the table matches what the
modules declare.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """Where a command lives, and its one-line help for the command list."""

    module: str
    attribute: str
    help: str

    def load(self, name: str) -> Any:
        """The real command: a module's Typer app, or a single command function.

        (``Any``: Typer builds its commands on the Click it vendors, whose types it does not
        export.)
        """
        target = getattr(importlib.import_module(self.module), self.attribute)
        # Mounted on a throw-away parent exactly as an eager app mounts it, so the command
        # gets the same name, help and options (and no root-only completion options).
        parent = typer.Typer(add_completion=False)
        if isinstance(target, typer.Typer):
            parent.add_typer(target, name=name)
        else:
            parent.command(name)(target)
        return typer.main.get_group(parent).commands[name]


# In the order `tagstream --help` has always listed them (Typer lists commands first).
COMMANDS = {
    "up": LazyCommand(
        "tagstream.cli.up",
        "up",
        "Run the broker, the topics and every service, restarting services that crash.",
    ),
    "demo": LazyCommand(
        "tagstream.demo.cli",
        "demo",
        "Show the data flywheel: replay the dataset through a real system, with a control run.",
    ),
    "model": LazyCommand(
        "tagstream.cli.model",
        "app",
        "Model lifecycle: train, evaluate, predict, list, show, promote.",
    ),
    "db": LazyCommand("tagstream.cli.db", "app", "Database schema migrations (Alembic)."),
    "topics": LazyCommand("tagstream.cli.topics", "app", "Kafka topics: create, list, tail."),
    "dlq": LazyCommand(
        "tagstream.cli.dlq", "app", "Dead-letter queue: replay entries after a fix."
    ),
    "users": LazyCommand("services.review.cli", "app", "Review accounts and their API tokens."),
    "settings": LazyCommand(
        "tagstream.cli.show_settings",
        "app",
        "Effective settings: what a service or command would run with.",
    ),
    "items": LazyCommand("tagstream.cli.items", "app", "Send items to ingest as a scraper would."),
    "rollout": LazyCommand(
        "tagstream.cli.rollout",
        "app",
        "Canary rollouts of model versions, decided by Prometheus metrics.",
    ),
}


class LazyGroup(TyperGroup):
    """Lists ``COMMANDS`` by name and help; imports a command only to run it.

    Click asks ``get_command`` while listing (help, completion of names) and
    ``resolve_command`` when a command is about to run or be completed; only the
    latter loads a module.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, lazy in COMMANDS.items():
            self.commands[name] = TyperCommand(name, help=lazy.help)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and name in COMMANDS:
            command = COMMANDS[name].load(name)
        return name, command, rest


app = typer.Typer(
    name="tagstream",
    help="tagstream: classify a live stream of content, review what is unsure, ship better models.",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from shared.version import __version__

        typer.echo(f"tagstream {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print tagstream's version and exit.",
    ),
) -> None:
    """The root's own options: ``--version`` (eager: it runs before any command)."""


if __name__ == "__main__":
    app()
