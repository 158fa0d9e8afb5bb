"""``tagstream db``: schema migrations."""

from __future__ import annotations

import typer

from shared.db.migrate import current, upgrade
from tagstream.cli.common import load_settings, out

app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)


@app.command("upgrade")
def upgrade_cmd(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION on TAGSTREAM_DATABASE_URL."""
    settings = load_settings()
    upgrade(settings.database_url, revision)
    out.print(f"database at revision {current(settings.database_url)}")


@app.command("current")
def current_cmd() -> None:
    """Print the database's current revision."""
    out.print(current(load_settings().database_url) or "empty (no migrations applied)")
