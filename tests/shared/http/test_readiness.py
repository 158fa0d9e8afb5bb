"""``Readiness``: named checks, each within its time limit, the answer cached briefly."""

from __future__ import annotations

import asyncio

from shared.http.readiness import Check, Readiness


async def test_a_failing_or_hung_check_is_not_ready_and_does_not_hang_the_probe() -> None:
    calls: list[str] = []

    async def fine() -> bool:
        calls.append("fine")
        return True

    async def broken() -> bool:
        raise ConnectionError("refused")

    async def hung() -> bool:
        await asyncio.Event().wait()
        return True

    readiness = Readiness({"fine": fine, "broken": broken, "hung": hung}, timeout_seconds=0.05)
    async with asyncio.timeout(5):
        assert await readiness() == {"fine": True, "broken": False, "hung": False}
        assert await readiness() == {"fine": True, "broken": False, "hung": False}
    assert calls == ["fine", "fine"]  # no cache by default


async def test_the_answer_is_cached_until_forgotten() -> None:
    up = {"database": False}

    async def database() -> bool:
        return up["database"]

    readiness = Readiness({"database": database}, cache_seconds=3600)
    assert await readiness() == {"database": False}
    up["database"] = True
    assert await readiness() == {"database": False}  # cached: probes cannot load the database
    readiness.forget()
    assert await readiness() == {"database": True}


async def test_checks_can_depend_on_how_far_start_up_got() -> None:
    started = {"consumer": False}

    async def yes() -> bool:
        return True

    def checks() -> dict[str, Check]:
        return {"model_loaded": yes, **({"consumer_running": yes} if started["consumer"] else {})}

    readiness = Readiness(checks)
    assert await readiness() == {"model_loaded": True}
    started["consumer"] = True
    assert await readiness() == {"model_loaded": True, "consumer_running": True}
