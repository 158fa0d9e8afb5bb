"""Training in a child process: its outcome comes back, and cancelling stops it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from shared.ml.training_job import TrainingRequest, run_training_job
from shared.registry import ModelRegistry
from shared.settings import Settings
from tests.fixtures.db import migrated


def local_settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        registry_dir=tmp_path / "registry",
        database_url=migrated(f"sqlite:///{tmp_path / 'tagstream.db'}"),
    )


async def test_a_run_registers_in_the_child_and_reports_the_version(
    tmp_path: Path, tiny_dataset: Path
) -> None:
    settings = local_settings(tmp_path)
    outcome = await run_training_job(TrainingRequest(settings, data_location=str(tiny_dataset)))

    assert outcome.error is None
    assert (outcome.status, outcome.announced) == ("stable", None)  # the first version
    with ModelRegistry.open(settings) as registry:
        assert registry.get(outcome.version or "").status == "stable"


async def test_a_failed_run_reports_why(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    outcome = await run_training_job(
        TrainingRequest(local_settings(tmp_path), data_location=str(missing))
    )
    assert outcome.version is None
    assert outcome.error is not None
    assert outcome.error.startswith("DataError: training data not found")


async def test_cancelling_the_run_terminates_the_training_process(
    tmp_path: Path, tiny_dataset: Path
) -> None:
    started = asyncio.Event()
    pids: list[int] = []

    def on_start(pid: int) -> None:
        pids.append(pid)
        started.set()

    request = TrainingRequest(local_settings(tmp_path), data_location=str(tiny_dataset))
    task = asyncio.create_task(run_training_job(request, on_start=on_start))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    with pytest.raises(ProcessLookupError):  # terminated and reaped, not left running
        os.kill(pids[0], 0)
    with ModelRegistry.open(local_settings(tmp_path)) as registry:
        assert registry.list_versions() == []
