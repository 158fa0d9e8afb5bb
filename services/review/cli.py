"""``tagstream users``: review accounts (reviewers and admins) and their API tokens.

The accounts are the review service's own data, so the command lives with the service
and the ``tagstream`` CLI mounts it. The account functions are imported when a command
runs, which keeps ``tagstream --help`` fast.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

from shared.console import err, load_settings, out
from shared.settings import Settings

app = typer.Typer(help="Review accounts and their API tokens.", no_args_is_help=True)


class RoleChoice(StrEnum):
    reviewer = "reviewer"
    admin = "admin"


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Account name (shown as the labeler).")],
    role: Annotated[RoleChoice, typer.Option("--role", help="reviewer or admin.")] = (
        RoleChoice.reviewer
    ),
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read a web-login password from the first line of stdin."
        ),
    ] = False,
) -> None:
    """Create an account; its API token is printed once, alone on the last line."""
    from services.review.auth import AccountExists, create_account
    from shared.db.session import make_engine, make_session_factory

    name = name.strip()
    if not name or len(name) > 100:
        err.print("[red]error:[/red] NAME must be 1 to 100 characters")
        raise typer.Exit(2)
    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if len(password) < 8:
            err.print("[red]error:[/red] the password needs at least 8 characters")
            raise typer.Exit(2)
    settings = load_settings(Settings)
    _migrate_review_tables(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine, immediate=True).begin() as session:
            _, token = create_account(session, name, role.value, datetime.now(UTC), password)
    except AccountExists as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    out.print(f"created {role.value} {name!r}; its API token (shown only now):", highlight=False)
    print(token)


@app.command("list")
def list_cmd() -> None:
    """List accounts: name, role, created."""
    from services.review.auth import list_accounts
    from shared.db.session import make_engine, make_session_factory

    settings = load_settings(Settings)
    _migrate_review_tables(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine).begin() as session:
            accounts = list_accounts(session)
    finally:
        engine.dispose()
    for account, created in accounts:
        out.print(f"{account.name}\t{account.role}\t{created.isoformat()}", highlight=False)


def _migrate_review_tables(url: str) -> None:
    # The accounts are the review service's tables: only its chain is migrated here.
    from services.review.tables import SCHEMA
    from shared.db.migrate import upgrade

    upgrade(url, SCHEMA)
