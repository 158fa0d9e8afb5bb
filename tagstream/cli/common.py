"""What every CLI command shares: settings read once, clear errors instead of tracebacks.

Nothing heavy is imported here at module level: every command module imports this one,
and ``tagstream --help`` must not wait for scikit-learn, SQLAlchemy or Kafka clients.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import typer

from shared.console import err, out
from shared.console import load_settings as load_settings_of

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

    from shared.settings import Settings

B = TypeVar("B", bound="BaseSettings")

__all__ = [
    "err",
    "load_settings",
    "load_settings_class",
    "out",
    "user_error_types",
    "user_errors",
]


def user_error_types() -> tuple[type[Exception], ...]:
    """Errors a user can fix: bad data or hyper-parameters, a failed parity gate, a
    registry refusal, a database not migrated, no file."""
    from shared.db.owners import SchemaNotUpgraded
    from shared.ml.config import ConfigError
    from shared.ml.data import DataError
    from shared.ml.onnx_parity import ParityError
    from shared.registry import RegistryError

    return (
        ConfigError,
        DataError,
        ParityError,
        RegistryError,
        SchemaNotUpgraded,
        FileNotFoundError,
    )


def load_settings() -> Settings:
    """The settings every tagstream command shares (``shared.console.load_settings``)."""
    from shared.settings import Settings

    return load_settings_of(Settings)


def load_settings_class(settings_class: type[B]) -> B:
    """Any settings class (the services', the clients'), or one line naming each bad
    variable and exit code 2, worded as ``shared.console.load_settings`` words it."""
    from pydantic import ValidationError

    from shared.settings_errors import settings_problems

    try:
        return settings_class()
    except ValidationError as exc:
        err.print(f"[red]invalid settings:[/red] {settings_problems(exc)}", highlight=False)
        raise typer.Exit(2) from exc


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into a one-paragraph message and exit code 1."""
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, user_error_types()):
            raise
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
