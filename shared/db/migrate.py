"""Run the schema migrations from code: no ``alembic.ini`` needed, works from an installed wheel.

``upgrade(url)`` is what services and the registry call at start-up; ``alembic_config(url)``
gives developers the same configuration for ``alembic`` commands such as ``revision
--autogenerate`` (``alembic.command.revision(alembic_config(url), autogenerate=True, ...)``).
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from shared.db.session import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Alembic keeps the running migration context in module globals, so two threads of one
# process must not migrate at once. Across processes, env.py takes a database lock.
_UPGRADE_LOCK = threading.Lock()


def alembic_config(url: str, target_metadata: MetaData | None = None) -> Config:
    """An Alembic configuration pointing at tagstream's migrations and the database ``url``.

    ``target_metadata`` is needed only to autogenerate a revision: import every table
    module first, then pass ``shared.db.base.Base.metadata``.
    """
    config = Config()
    config.attributes["target_metadata"] = target_metadata
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not the "sqlalchemy.url" option, because ConfigParser would
    # treat any "%" in the URL (URL-encoded passwords) as interpolation.
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``; a no-op when already there.

    Safe to call from several threads and processes at once: they take turns.
    """
    with _UPGRADE_LOCK:
        command.upgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None if it was never migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
