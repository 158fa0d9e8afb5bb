"""Fixtures for the ingest tests: settings on the test's topics and database, and a
running app (lifespan entered, producer connected) behind an httpx client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.settings import Settings

API_KEY = "test-scraper-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def ingest_settings(base: Settings, **overrides: Any) -> IngestSettings:
    """IngestSettings with everything in ``base`` (topics, broker), plus ``overrides``."""
    values = {**base.model_dump(), "ingest_api_keys": API_KEY, **overrides}
    return IngestSettings(**values)


@asynccontextmanager
async def running(
    app: FastAPI, *, wait_connected: bool = True, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` with its lifespan entered, and a client speaking to it in-process."""
    async with app.router.lifespan_context(app):
        if wait_connected:
            await asyncio.wait_for(app.state.ingest.publisher.wait_connected(), 20)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://ingest",
            headers=AUTH if headers is None else headers,
        ) as client:
            yield client


@pytest.fixture
def metrics_registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def app_settings(topics: Settings, migrated_database_url: str) -> IngestSettings:
    """Ingest settings on this test's topics and parametrized database."""
    return ingest_settings(topics, database_url=migrated_database_url)


@pytest.fixture
async def client(
    app_settings: IngestSettings, metrics_registry: CollectorRegistry
) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(app_settings, metrics_registry=metrics_registry)) as http:
        yield http


def metric(metrics_registry: CollectorRegistry, name: str, **labels: str) -> float:
    return metrics_registry.get_sample_value(name, labels) or 0.0
