"""``BackgroundTasks``: loops stop on the event, stragglers are cancelled after the timeout."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from shared.http.lifespan import BackgroundTasks


async def test_loops_that_honour_stop_finish_their_work() -> None:
    finished: list[str] = []

    async def loop(stop: asyncio.Event) -> None:
        await stop.wait()
        await asyncio.sleep(0)  # the last batch
        finished.append("committed")

    async with BackgroundTasks("svc", shutdown_timeout_seconds=5) as loops:
        loops.start(loop, "one")
        loops.start(loop, "two")
    assert finished == ["committed", "committed"]


async def test_a_loop_ignoring_stop_is_cancelled_after_the_timeout() -> None:
    cancelled = asyncio.Event()

    async def stubborn(stop: asyncio.Event) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loops = BackgroundTasks("svc", shutdown_timeout_seconds=0.05)
    task = loops.start(stubborn, "stubborn")
    await asyncio.sleep(0)
    with capture_logs() as logs:
        async with asyncio.timeout(5):
            await loops.close()
    assert task.cancelled()
    assert cancelled.is_set()
    assert [e["event"] for e in logs] == ["svc_shutdown_timed_out"]
    assert logs[0]["cancelled"] == ["stubborn"]


async def test_a_crash_is_logged_when_it_happens() -> None:
    async def crashing(stop: asyncio.Event) -> None:
        raise RuntimeError("boom")

    loops = BackgroundTasks("svc")
    with capture_logs() as logs:
        task = loops.start(crashing, "crashing")
        await asyncio.wait([task])
        await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
    assert [(e["event"], e["task"]) for e in logs] == [("svc_task_crashed", "crashing")]
    await loops.close()
