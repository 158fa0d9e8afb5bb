"""One training run in a process of its own: ``python -m shared.ml.training_job RESULT``.

A service that retrains (the feedback service) starts training here instead of running it
in its own interpreter: the training stack never enters the service's memory, a run
cannot hold the service's event loop or GIL for minutes, and stopping the service stops
the run (the child is terminated). The run still ends in ``register_candidate``
(``shared.ml.training.train``), so its candidate is registered and announced.

The parent sends a pickled ``TrainingRequest`` on the child's standard input (parent and
child are the same trusted program); the child writes a ``TrainingOutcome`` as JSON to the
file named by its argument, because its standard output carries its logs.
"""

from __future__ import annotations

import asyncio
import json
import pickle  # only between this process and the child it started  # nosec B403
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog

from shared.ml.gold import GoldSet
from shared.settings import Settings

log = structlog.get_logger(__name__)

STOP_GRACE_SECONDS = 10.0
"""How long a terminated run may take to exit before it is killed."""


@dataclass(frozen=True, slots=True)
class TrainingRequest:
    """The arguments of ``shared.ml.training.train`` for one run."""

    settings: Settings
    data_location: str | None = None
    gold: GoldSet | None = None


@dataclass(frozen=True, slots=True)
class TrainingOutcome:
    """The registered version (id, status, whether announced), or why the run failed."""

    version: str | None = None
    status: str | None = None
    announced: bool | None = None
    error: str | None = None


async def run_training_job(
    request: TrainingRequest, *, on_start: Callable[[int], None] | None = None
) -> TrainingOutcome:
    """Train in a child process and return its outcome; cancelling terminates the child.

    ``on_start`` receives the child's pid once it runs.
    """
    with tempfile.TemporaryDirectory(prefix="tagstream-training-") as tmp:
        result = Path(tmp) / "outcome.json"
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", __name__, str(result), stdin=asyncio.subprocess.PIPE
        )
        if on_start is not None:
            on_start(child.pid)
        try:
            await child.communicate(pickle.dumps(request))
        except asyncio.CancelledError:
            await _stop(child)
            raise
        if not result.exists():
            return TrainingOutcome(error=f"the training process exited with {child.returncode}")
        return TrainingOutcome(**json.loads(result.read_text()))


async def _stop(child: asyncio.subprocess.Process) -> None:
    if child.returncode is not None:
        return
    child.terminate()
    try:
        await asyncio.wait_for(child.wait(), STOP_GRACE_SECONDS)
    except TimeoutError:
        child.kill()
        await child.wait()
    log.warning("training_stopped", pid=child.pid)


def main(result_path: str) -> int:
    """The child: train once, write the outcome, exit 0 on success and 1 on failure."""
    from shared.ml.training import train  # the training stack: here, in the child only
    from shared.observability.logging import configure_logging

    # The parent wrote it to this child's stdin (run_training above); nothing else can.
    request: TrainingRequest = pickle.load(sys.stdin.buffer)  # nosec B301
    configure_logging("training", request.settings.log_level, request.settings.log_format)
    try:
        trained = train(request.settings, data_location=request.data_location, gold=request.gold)
    except Exception as exc:
        log.exception("training_failed")
        outcome = TrainingOutcome(error=f"{type(exc).__name__}: {exc}"[:2000])
    else:
        version = trained.version
        outcome = TrainingOutcome(version.version, str(version.status), trained.announced)
    Path(result_path).write_text(json.dumps(asdict(outcome)))
    return 0 if outcome.error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
