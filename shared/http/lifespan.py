"""``BackgroundTasks``: the loops a service runs beside its HTTP app, stopped cleanly.

Every service's lifespan does the same: start its loops with one stop ``Event``; on
shutdown set it, give the loops up to the shutdown timeout to finish what they hold (a
batch to commit, a consumer group to leave), cancel whatever is still running, and only
then close the resources the loops use. Entered as an async context manager after those
resources are opened, it is left before they are closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: For a service without a shutdown-timeout setting (the rollout controller's old wait).
DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 10.0

Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class BackgroundTasks:
    """Loops sharing one ``stop`` event, each started as ``run(stop)``."""

    def __init__(
        self, service: str, shutdown_timeout_seconds: float = DEFAULT_SHUTDOWN_TIMEOUT_SECONDS
    ) -> None:
        self.service = service
        self.stop = asyncio.Event()
        self._timeout = shutdown_timeout_seconds
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, run: Loop, name: str) -> asyncio.Task[None]:
        """Run ``run(self.stop)`` as task ``name``; a crash is logged when it happens."""
        task = asyncio.create_task(run(self.stop), name=name)
        task.add_done_callback(self._report_crash)
        self._tasks.append(task)
        return task

    def _report_crash(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                f"{self.service}_task_crashed", task=task.get_name(), error=repr(task.exception())
            )

    async def close(self) -> None:
        """Set ``stop``, wait up to the timeout, then cancel and await what is left."""
        self.stop.set()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=self._timeout)
        if pending:
            # Work they had not committed is redelivered to whoever takes it over next.
            log.error(
                f"{self.service}_shutdown_timed_out",
                timeout_seconds=self._timeout,
                cancelled=sorted(t.get_name() for t in pending),
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def __aenter__(self) -> BackgroundTasks:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
