"""Alembic environment: builds the engine with shared.db.session so SQLite and PostgreSQL
get the same connection settings as the application."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import text

from shared.db.base import UtcDateTime
from shared.db.session import make_engine, normalize_url, writer

config = context.config
# Arbitrary constant naming tagstream's migration lock among PostgreSQL advisory locks.
_MIGRATION_LOCK_KEY = 0x7461677374726D  # "tagstrm"
# Only autogenerate needs the tables' metadata; the caller passes it (after importing the
# table modules of shared and services) so shared/ never imports services/.
target_metadata = config.attributes.get("target_metadata")


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: use shared.db.migrate.alembic_config(url)")
    return str(url)


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations must not import application types (they change; migrations must not), so
    # UtcDateTime is written as the column type it stores.
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline() -> None:
    """Render the SQL instead of running it (``alembic upgrade --sql``)."""
    url = normalize_url(_database_url())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_database_url())
    try:
        # BEGIN IMMEDIATE on SQLite: a second process migrating at the same time waits for
        # the first instead of failing when its read snapshot turns out to be stale.
        with writer(engine).connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
                render_item=_render_item,
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    # Processes starting together would otherwise race to create the same
                    # tables; the second waits here and then finds the schema up to date.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
