"""The ``tagstream`` command line: one entry point for every operator task."""

from __future__ import annotations

import typer

from services.review import cli as users
from tagstream.cli import db, dlq, model, rollout, topics, up

app = typer.Typer(
    name="tagstream",
    help="tagstream: classify a live stream of content, review what is unsure, ship better models.",
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


app.add_typer(model.app, name="model")
app.add_typer(db.app, name="db")
app.add_typer(topics.app, name="topics")
app.add_typer(dlq.app, name="dlq")
app.add_typer(users.app, name="users")
app.add_typer(rollout.app, name="rollout")
app.command("up")(up.up)

if __name__ == "__main__":
    app()
