"""What every command line shares, the application's and the services' own commands alike:
one stdout and one stderr console, and settings read once with a clear error.

Light on purpose: ``tagstream --help`` imports this, so pydantic and the settings are
imported only when a command reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console

from shared.settings_errors import settings_problems

if TYPE_CHECKING:
    from shared.settings import Settings

out = Console()
err = Console(stderr=True)
S = TypeVar("S", bound="Settings")


def load_settings(settings_class: type[S]) -> S:
    """The settings, or a one-line error naming each bad variable and exit code 2."""
    from pydantic import ValidationError

    try:
        return settings_class()
    except ValidationError as exc:
        err.print(f"[red]invalid settings:[/red] {settings_problems(exc)}", highlight=False)
        raise typer.Exit(2) from exc
