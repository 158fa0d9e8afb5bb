"""What every command line shares, the application's and the services' own commands alike:
one stdout and one stderr console, and settings read once with a clear error."""

from __future__ import annotations

from typing import TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from shared.settings import Settings

out = Console()
err = Console(stderr=True)
S = TypeVar("S", bound=Settings)


def load_settings(settings_class: type[S]) -> S:
    """The settings, or a one-line error naming each bad variable and exit code 2."""
    try:
        return settings_class()
    except ValidationError as exc:
        problems = "; ".join(
            f"TAGSTREAM_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        err.print(f"[red]invalid settings:[/red] {problems}", highlight=False)
        raise typer.Exit(2) from exc
