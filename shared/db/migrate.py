"""Run the schema migrations from code: no ``alembic.ini`` needed, works from an installed wheel.

Each owner of tables (the model registry, ingest, review, feedback, rollout) keeps its own
chain of Alembic revisions in a folder beside its tables and its own version table
(``alembic_version_<owner>``), so owners migrate independently: it describes itself with a
:class:`~shared.db.owners.SchemaOwner`. One environment (``migrations/env.py`` here) runs
every chain, with the same connection settings and cross-process lock.

``upgrade_all(url, owners)`` is what ``tagstream db upgrade`` and the init job run;
services only check :func:`schema_current` in their readiness. ``alembic_config(url,
owner)`` gives developers the same configuration for ``alembic`` commands such as
``revision --autogenerate``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, text

from shared.db.owners import UPGRADE_HINT, SchemaNotUpgraded, SchemaOwner
from shared.db.session import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Alembic keeps the running migration context in module globals, so two threads of one
# process must not migrate at once. Across processes, lock_migrations() takes turns.
_UPGRADE_LOCK = threading.Lock()
# Arbitrary constant naming tagstream's migration lock among PostgreSQL advisory locks.
_MIGRATION_LOCK_KEY = 0x7461677374726D  # "tagstrm"


def alembic_config(url: str, owner: SchemaOwner, target_metadata: MetaData | None = None) -> Config:
    """An Alembic configuration for ``owner``'s migrations on the database ``url``.

    ``target_metadata`` is needed only to autogenerate a revision: in a process that
    imported only ``owner``'s table module, pass ``shared.db.base.Base.metadata``. env.py
    then compares just those tables, so other owners' tables are never dropped.
    """
    config = Config()
    config.attributes["target_metadata"] = target_metadata
    config.attributes["version_table"] = owner.version_table
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # One folder; "os" splits on os.pathsep only, so a path with spaces stays one path.
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(owner.versions_dir))
    # Passed as an attribute, not the "sqlalchemy.url" option, because ConfigParser would
    # treat any "%" in the URL (URL-encoded passwords) as interpolation.
    config.attributes["database_url"] = url
    return config


def lock_migrations(connection: Connection) -> None:
    """Wait for any other process migrating this database, for the rest of the transaction.

    PostgreSQL: an advisory lock. SQLite: the caller's connection begins with BEGIN
    IMMEDIATE (``shared.db.session.writer``), which already takes the database's write lock.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})


def upgrade(url: str, owner: SchemaOwner, revision: str = "head") -> None:
    """Migrate ``owner``'s tables at ``url`` up to ``revision``; a no-op when already there.

    Safe to call from several threads and processes at once: they take turns. Refuses a
    database still on the old single chain (only :func:`upgrade_all` can convert it,
    because it knows every owner).
    """
    from shared.db.legacy import has_legacy_chain  # legacy builds on this module

    with _UPGRADE_LOCK:
        if has_legacy_chain(url):
            raise SchemaNotUpgraded(
                f"the database still has the single migration chain of before: {UPGRADE_HINT}"
            )
        command.upgrade(alembic_config(url, owner), revision)


def upgrade_all(url: str, owners: Iterable[SchemaOwner]) -> None:
    """Migrate every owner's tables at ``url`` to its head, converting an old database first."""
    from shared.db.legacy import adopt_legacy_chain  # legacy builds on this module

    owners = tuple(owners)
    with _UPGRADE_LOCK:
        adopt_legacy_chain(url, owners)
        for owner in owners:
            command.upgrade(alembic_config(url, owner), "head")


def current(url: str, owner: SchemaOwner) -> str | None:
    """The revision ``owner``'s tables at ``url`` are at, or None if never migrated."""
    engine = make_engine(url)
    try:
        return _current_revision(engine, owner)
    finally:
        engine.dispose()


@cache
def head(owner: SchemaOwner) -> str:
    """The newest revision of ``owner``'s chain (read from its files once per process)."""
    script = ScriptDirectory.from_config(alembic_config("", owner))
    heads = script.get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the {owner.name} migrations must form one chain, found {heads}")
    return heads[0]


def schema_current(engine_or_url: Engine | str, owner: SchemaOwner) -> bool:
    """True when ``owner``'s tables are at the head this code was written for.

    An unmigrated database (or one at another release's revision) answers False, and so,
    rather than raising, does an unreachable one.
    """
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        return at_head(engine, owner)
    except Exception:
        return False
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


def at_head(engine: Engine, owner: SchemaOwner) -> bool:
    """Like :func:`schema_current`, but a database error propagates."""
    return _current_revision(engine, owner) == head(owner)


def _current_revision(engine: Engine, owner: SchemaOwner) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": owner.version_table}
        )
        return context.get_current_revision()
