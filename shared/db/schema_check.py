"""The ``schema`` readiness check: services do not migrate, they wait to be migrated.

``tagstream db upgrade`` (the init job, ``make run``) migrates; a service started on a
database without its tables answers /readyz 503 with ``schema: false`` and says what to run,
rather than crashing or racing other processes to create tables.
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import Engine

from shared.db.migrate import at_head
from shared.db.owners import UPGRADE_HINT, SchemaOwner

log = structlog.get_logger("shared.db")


class SchemaCheck:
    """Are the tables of ``owners`` (the service's own, and those it reads) at their heads?

    Once they are, the answer stays True for the life of the process: a later upgrade
    comes from a newer release, whose migrations only add (docs/operations.md), so this
    code keeps working on it and must not drop out of the load balancer mid-deploy.
    """

    def __init__(self, *owners: SchemaOwner, timeout_seconds: float = 2.0) -> None:
        self.owners = owners
        self._timeout = timeout_seconds
        self._engine: Engine | None = None
        self._current = False
        self._hinted = False

    async def attach(self, engine: Engine) -> bool:
        """Check on ``engine`` from now on; checks at once, so the hint is logged at start-up."""
        self._engine = engine
        return await self()

    async def __call__(self) -> bool:
        """The readiness check: False until attached, and while not migrated (hint once)."""
        if self._current:
            return True
        engine = self._engine
        if engine is None:
            return False
        try:
            current = await asyncio.wait_for(
                asyncio.to_thread(self._at_heads, engine), self._timeout
            )
        except Exception:
            return False  # the database check reports an unreachable database
        if current:
            self._current = True
        elif not self._hinted:
            self._hinted = True
            log.warning(
                "schema_not_migrated",
                owners=[owner.name for owner in self.owners],
                hint=f"{UPGRADE_HINT} against this database; /readyz answers 503 until then",
            )
        return current

    def _at_heads(self, engine: Engine) -> bool:
        return all(at_head(engine, owner) for owner in self.owners)
