"""What is wrong with the settings, in one line: the one wording of every entry point
(``serve()`` for the services, ``shared.console.load_settings`` for the command lines).

Imports pydantic only for its type, so a command line can import it before it decides
whether it needs settings at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


def settings_problems(exc: ValidationError, env_prefix: str = "TAGSTREAM_") -> str:
    """``VAR: reason; VAR: reason`` for each bad variable; a rule across fields (no
    variable to name) is its reason alone. Never more than one line."""
    problems = []
    for error in exc.errors():
        reason = str(error["msg"]).removeprefix("Value error, ")
        loc = error.get("loc", ())
        problems.append(f"{env_prefix}{str(loc[0]).upper()}: {reason}" if loc else reason)
    return "; ".join(problems).replace("\n", " ")
