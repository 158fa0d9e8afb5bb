"""Child processes kept running the way Kubernetes keeps pods running.

A :class:`Supervisor` starts one process per :class:`ServiceSpec`, restarts any child that
exits without being asked to (whatever its exit code) after an exponential backoff, counts
the restarts, and on :meth:`Supervisor.stop` sends SIGTERM to every child, waits, and
SIGKILLs what is still running. Children die with the supervisor too when it is killed
(see ``tagstream.local.lifeline``): each asks for a parent-death signal, and an optional
:class:`~tagstream.local.lifeline.Lifeline` stops each child's whole process group. Each
child's stdout and stderr go to ``<log_dir>/<name>.log``; an optional ``echo`` callback
gets a copy of every line.

The loop is driven by the caller (:meth:`Supervisor.check`, or :meth:`Supervisor.run`
until an event is set), so it owns no signal handlers and is easy to test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self

import structlog

from tagstream.local.lifeline import Lifeline, die_with_parent, signals_deferred

log = structlog.get_logger(__name__)

State = Literal["pending", "running", "backoff", "stopped"]
Echo = Callable[[str, str], None]


@dataclass(frozen=True)
class ServiceSpec:
    """One supervised program: a name, its argv, extra environment, and its HTTP port."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    port: int | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff before restart ``n`` of a crash loop: ``initial * 2**(n-1)``, capped.

    A child that stayed up for ``reset_after`` seconds is considered healthy again: its
    next crash waits ``initial`` again (the restart *count* is never reset).
    """

    initial: float = 0.5
    maximum: float = 30.0
    reset_after: float = 60.0

    def delay(self, consecutive_failures: int) -> float:
        return min(self.initial * 2 ** max(consecutive_failures - 1, 0), self.maximum)


@dataclass
class Child:
    """What the supervisor knows about one service."""

    spec: ServiceSpec
    state: State = "pending"
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    consecutive_failures: int = 0
    last_exit_code: int | None = None
    started_at: float | None = None
    restart_at: float | None = None
    reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


class Supervisor:
    """Start, restart and stop a set of child processes."""

    def __init__(
        self,
        specs: Sequence[ServiceSpec],
        *,
        log_dir: Path,
        policy: RestartPolicy | None = None,
        stop_timeout: float = 10.0,
        echo: Echo | None = None,
        on_restart: Callable[[Child], None] | None = None,
        lifeline: Lifeline | None = None,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"service names must be unique: {names}")
        self.children = [Child(spec) for spec in specs]
        self.log_dir = log_dir
        self.policy = policy or RestartPolicy()
        self.stop_timeout = stop_timeout
        self.echo = echo
        self.on_restart = on_restart
        self.lifeline = lifeline
        self._stopping = False
        self._force = threading.Event()

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> Self:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            self._spawn(child)
        return self

    def check(self, now: float | None = None) -> None:
        """Notice exited children and start those whose backoff is over. Call it often."""
        if self._stopping:
            return
        now = time.monotonic() if now is None else now
        for child in self.children:
            if child.state == "running" and child.process is not None:
                code = child.process.poll()
                if code is not None:
                    self._exited(child, code, now)
            if (
                child.state == "backoff"
                and child.restart_at is not None
                and now >= child.restart_at
            ):
                child.restarts += 1
                self._spawn(child)
                log.info(
                    "service_restarted",
                    service=child.spec.name,
                    pid=child.pid,
                    restart_count=child.restarts,
                )
                if self.on_restart is not None:
                    self.on_restart(child)

    def run(self, stop: threading.Event, *, interval: float = 0.1) -> None:
        """Supervise until ``stop`` is set (a signal handler sets it), then stop all."""
        try:
            while not stop.wait(interval):
                self.check()
        finally:
            self.stop()

    def stop(self) -> None:
        """SIGTERM every child, wait up to ``stop_timeout`` in total, then SIGKILL the rest."""
        self._stopping = True
        running = [c for c in self.children if c.state == "running" and c.process is not None]
        for child in running:
            self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(c.process.poll() is None for c in running if c.process is not None):
            if time.monotonic() >= deadline or self._force.is_set():
                break
            time.sleep(0.05)
        for child in running:
            assert child.process is not None
            if child.process.poll() is None:
                log.warning("service_killed", service=child.spec.name, pid=child.pid)
                self._signal(child, signal.SIGKILL)
            child.last_exit_code = child.process.wait()
            self._forget(child)
        for child in self.children:
            child.state = "stopped"
            child.restart_at = None
            if child.reader is not None:
                child.reader.join(timeout=2)

    def force_stop(self) -> None:
        """Make a :meth:`stop` in progress SIGKILL at once (a second Ctrl-C)."""
        self._force.set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- internals --------------------------------------------------------------------

    def _spawn(self, child: Child) -> None:
        spec = child.spec
        logfile = self.log_file(spec.name).open("ab")
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        logfile.write(f"--- {stamp} start #{child.restarts}: {' '.join(spec.argv)}\n".encode())
        logfile.flush()
        # Its own session: the terminal's Ctrl-C reaches only the supervisor, which then
        # stops the children in order; and killpg reaches whatever the child spawned.
        with signals_deferred():  # a Ctrl-C between the fork and the record would orphan it
            process = subprocess.Popen(  # argv from `up`'s own specs, no shell  # nosec B603
                list(spec.argv),
                env={**os.environ, **spec.env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),  # only prctl runs in the child, libc found before
            )
            if self.lifeline is not None:
                self.lifeline.watch(process.pid)
            child.process = process
        child.state = "running"
        child.started_at = time.monotonic()
        child.restart_at = None
        child.reader = threading.Thread(
            target=_copy_output,
            args=(process.stdout, logfile, spec.name, self.echo),
            name=f"log-{spec.name}",
            daemon=True,
        )
        child.reader.start()
        log.info("service_started", service=spec.name, pid=process.pid, port=spec.port)

    def _exited(self, child: Child, code: int, now: float) -> None:
        uptime = now - (child.started_at or now)
        if uptime >= self.policy.reset_after:
            child.consecutive_failures = 0
        child.consecutive_failures += 1
        delay = self.policy.delay(child.consecutive_failures)
        child.last_exit_code = code
        # What it started would outlive it and hold its port against the restart.
        self._signal(child, signal.SIGKILL)
        self._forget(child)
        child.state = "backoff"
        child.restart_at = now + delay
        log.warning(
            "service_exited",
            service=child.spec.name,
            pid=child.pid,
            exit_code=code,
            uptime_s=round(uptime, 3),
            restart_count=child.restarts,
            restart_in_s=delay,
        )

    def _forget(self, child: Child) -> None:
        # Its group may still hold a grandchild, which the stop already signalled; a
        # forgotten pgid is never signalled again, so a reused one is never hit.
        if self.lifeline is not None and child.process is not None:
            self.lifeline.forget(child.process.pid)

    @staticmethod
    def _signal(child: Child, sig: signal.Signals) -> None:
        assert child.process is not None
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(child.process.pid, sig)


def _copy_output(pipe: IO[bytes] | None, logfile: IO[bytes], name: str, echo: Echo | None) -> None:
    """Copy a child's output line by line into its log file (and to ``echo``)."""
    if pipe is None:
        logfile.close()
        return
    with pipe, logfile:
        for line in iter(pipe.readline, b""):
            logfile.write(line)
            logfile.flush()
            if echo is not None:
                echo(name, line.decode("utf-8", errors="replace").rstrip("\n"))
