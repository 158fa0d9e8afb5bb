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
app.add_typer(model.app, name="model")
app.add_typer(db.app, name="db")
app.add_typer(topics.app, name="topics")
app.add_typer(dlq.app, name="dlq")
app.add_typer(users.app, name="users")
app.add_typer(rollout.app, name="rollout")
app.command("up")(up.up)

if __name__ == "__main__":
    app()
