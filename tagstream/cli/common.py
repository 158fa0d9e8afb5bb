"""What every CLI command shares: settings read once, clear errors instead of tracebacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError
from rich.console import Console

from shared.db.owners import SchemaNotUpgraded
from shared.ml.data import DataError
from shared.ml.onnx_export import ParityError
from shared.registry import RegistryError
from shared.settings import Settings

out = Console()
err = Console(stderr=True)

USER_ERRORS = (DataError, ParityError, RegistryError, SchemaNotUpgraded, FileNotFoundError)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"TAGSTREAM_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        err.print(f"[red]invalid settings:[/red] {problems}")
        raise typer.Exit(2) from exc


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into a one-paragraph message and exit code 1."""
    try:
        yield
    except USER_ERRORS as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
