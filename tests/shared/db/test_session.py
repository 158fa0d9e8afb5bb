from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from shared.db.session import make_engine, make_session_factory


def test_postgresql_urls_use_psycopg3() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:5432/test")
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_sqlite_creates_folder_and_enforces_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'deeper' / 'x.db'}")
    try:
        with engine.begin() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            connection.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
            connection.exec_driver_sql(
                "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER "
                "REFERENCES parent (id))"
            )
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO child (id, parent_id) VALUES (1, 99)")
    finally:
        engine.dispose()
    assert (tmp_path / "nested" / "deeper" / "x.db").is_file()


def test_sessions_roll_back_on_error(database_url: str) -> None:
    engine = make_engine(database_url)
    factory = make_session_factory(engine, immediate=True)
    try:
        with factory.begin() as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))

        def failing_unit_of_work() -> None:
            with factory.begin() as session:
                session.execute(text("INSERT INTO t VALUES (1)"))
                raise RuntimeError("abort the unit of work")

        with pytest.raises(RuntimeError):
            failing_unit_of_work()
        with factory() as session:
            assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    finally:
        engine.dispose()
