"""The review service's database handle on ``app.state.review_db`` and a helper to use it.

Blocking SQL runs in worker threads; each call is one unit of work (commit or rollback).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.review.service import POLICY_KEY, ReviewPolicy
from shared.db.session import make_session_factory

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class ReviewDatabase:
    """Engine and the unit-of-work factory (BEGIN IMMEDIATE on SQLite, policy in ``info``)."""

    engine: Engine
    sessions: sessionmaker[Session]

    @classmethod
    def open(cls, engine: Engine, policy: ReviewPolicy) -> ReviewDatabase:
        sessions = make_session_factory(engine, immediate=True)
        sessions.configure(info={POLICY_KEY: policy})
        return cls(engine=engine, sessions=sessions)

    def run(
        self, function: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with self.sessions.begin() as session:
            return function(session, *args, **kwargs)


async def run_db(
    app: FastAPI, function: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``function(session, *args)`` in one transaction, in a worker thread."""
    database: Any = app.state.review_db
    assert isinstance(database, ReviewDatabase), "the review app's lifespan has not run"
    return await asyncio.to_thread(functools.partial(database.run, function, *args, **kwargs))
