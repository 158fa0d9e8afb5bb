"""``tagstream users``: review accounts (reviewers and admins) and their API tokens.

The accounts are the review service's own data, so the command lives with the service
and the ``tagstream`` CLI mounts it. The account functions are imported when a command
runs, which keeps ``tagstream --help`` fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from shared.console import err, load_settings, out
from shared.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")
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
    """List accounts: name, role, created, active or disabled, token revoked or issued when."""
    from services.review.accounts import describe_accounts

    for a in _change(describe_accounts):
        state = "disabled" if a.disabled else "active"
        issued = a.token_issued_at.isoformat() if a.token_issued_at else "-"
        token = "token-revoked" if a.token_revoked else f"token-issued={issued}"
        out.print(
            f"{a.name}\t{a.role}\t{a.created_at.isoformat()}\t{state}\t{token}", highlight=False
        )


NameArg = Annotated[str, typer.Argument(help="Account name.")]


def _change(work: Callable[[Session], T]) -> T:
    """``work`` in one transaction on the review tables (migrated first); an unknown
    account or a too-short password ends the command with its reason (exit 1)."""
    from services.review.accounts import UnknownAccount, WeakPassword
    from shared.db.session import make_engine, make_session_factory

    settings = load_settings(Settings)
    _migrate_review_tables(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine, immediate=True).begin() as session:
            return work(session)
    except (UnknownAccount, WeakPassword) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


@app.command("disable")
def disable(name: NameArg) -> None:
    """Disable an account: its token and password stop working, its claims are released."""
    from services.review.accounts import disable_account

    _change(lambda s: disable_account(s, name, datetime.now(UTC)))
    out.print(f"disabled {name!r}", highlight=False)


@app.command("enable")
def enable(name: NameArg) -> None:
    """Enable a disabled account again."""
    from services.review.accounts import enable_account

    _change(lambda s: enable_account(s, name))
    out.print(f"enabled {name!r}", highlight=False)


@app.command("remove")
def remove(name: NameArg) -> None:
    """Remove an account (its labels stay, its claims are released)."""
    from services.review.accounts import remove_account

    _change(lambda s: remove_account(s, name))
    out.print(f"removed {name!r}", highlight=False)


@app.command("reset-password")
def reset_password(name: NameArg) -> None:
    """Set a new web-login password, read from the first line of stdin."""
    from services.review.accounts import reset_password as reset

    password = sys.stdin.readline().rstrip("\r\n")
    _change(lambda s: reset(s, name, password))
    out.print(f"new password set for {name!r}", highlight=False)


@app.command("rotate-token")
def rotate_token(name: NameArg) -> None:
    """Issue a new API token (printed once, alone on the last line); the old one stops."""
    from services.review.accounts import rotate_token as rotate

    token = _change(lambda s: rotate(s, name, datetime.now(UTC)))
    out.print(f"new API token of {name!r} (shown only now):", highlight=False)
    print(token)


@app.command("revoke-token")
def revoke_token(name: NameArg) -> None:
    """Revoke the API token; `rotate-token` issues a new one."""
    from services.review.accounts import revoke_token as revoke

    _change(lambda s: revoke(s, name, datetime.now(UTC)))
    out.print(f"revoked the API token of {name!r}", highlight=False)


def _migrate_review_tables(url: str) -> None:
    # The accounts are the review service's tables: only its chain is migrated here.
    from services.review.tables import SCHEMA
    from shared.db.migrate import upgrade

    upgrade(url, SCHEMA)
