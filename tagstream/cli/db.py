"""``tagstream db``: schema migrations of every owner of tables."""

from __future__ import annotations

import typer

from tagstream.cli.common import load_settings, out

app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)


@app.command("upgrade")
def upgrade_cmd() -> None:
    """Migrate every owner's tables on TAGSTREAM_DATABASE_URL to their newest revision.

    A database migrated before each owner had its own chain is converted first.
    """
    from tagstream.schema import revisions, upgrade_all

    url = load_settings().database_url
    upgrade_all(url)
    _print(revisions(url))


@app.command("current")
def current_cmd() -> None:
    """Print each owner's current revision and whether it is the newest."""
    from shared.db.migrate import head
    from tagstream.schema import SCHEMA_OWNERS, revisions

    current = revisions(load_settings().database_url)
    heads = {owner.name: head(owner) for owner in SCHEMA_OWNERS}
    _print(current, heads)


def _print(current: dict[str, str | None], heads: dict[str, str] | None = None) -> None:
    for owner, revision in current.items():
        line = f"{owner}: {revision or 'empty (no migrations applied)'}"
        if heads is not None and revision != heads[owner]:
            line += f" (newest: {heads[owner]})"
        out.print(line, highlight=False)
