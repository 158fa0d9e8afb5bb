"""``tagstream settings show``: the settings a process would run with, secrets masked."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from tagstream.cli.common import load_settings_class, out
from tagstream.settings_catalog import CATALOG, effective

app = typer.Typer(help="Effective settings: what a service or command would run with.")
Service = Enum("Service", {name: name for name in CATALOG}, type=str)  # type: ignore[misc]


@app.command()
def show(
    service: Annotated[
        Service,
        typer.Option(
            help="Whose settings: shared (every part), a service, or client (the "
            "commands that call services)."
        ),
    ] = Service["shared"],
) -> None:
    """Print each setting as VARIABLE=value, as read from the environment, .env and the
    defaults; '# default' marks values nobody set. Secrets and passwords in URLs are
    masked."""
    settings = load_settings_class(CATALOG[service.value].load())
    for variable, value, is_default in effective(settings):
        note = "  # default" if is_default else ""
        out.print(f"{variable}={value}{note}", highlight=False, markup=False, soft_wrap=True)
