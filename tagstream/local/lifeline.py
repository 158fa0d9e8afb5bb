"""Children that die with their supervisor, however it dies.

Every child of ``tagstream up`` runs in a session of its own (so the terminal's Ctrl-C
reaches only the supervisor, which stops them in order). The flip side: when the supervisor
itself is SIGKILLed or taken by the OOM killer, nobody stops them, and the broker,
Prometheus and the services keep their ports as orphans. Two mechanisms close that gap:

- :func:`die_with_parent`, run in each child between fork and exec, asks the kernel for a
  SIGTERM when the parent goes (Linux ``PR_SET_PDEATHSIG``). It reaches the direct child
  only: the setting is not inherited across fork, so a wrapper's own children (a shell
  script that starts Prometheus, a server's workers) would survive.
- A :class:`Lifeline` is one small watchdog process per supervisor. The supervisor tells it,
  over a pipe, the process group of each child it starts (a child in its own session leads
  a group that holds everything it spawns). When the pipe reaches end-of-file without a
  goodbye — the supervisor is gone, however — the watchdog SIGTERMs every group, waits
  ``grace`` seconds, SIGKILLs what is left, and exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import IO, Self

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
GOODBYE = "bye"


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when its parent dies.

    None off Linux. The signal follows the parent *thread* that forked: spawn from a thread
    that lives as long as the supervisor (``tagstream up`` spawns from its main thread).
    libc is looked up here, before the fork: the child runs only the call itself.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return  # the watchdog still covers this child
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block ends, then act on the first one.

    For spawning a child and recording its handle as one step: a KeyboardInterrupt between
    the fork and the assignment would leave a child that nobody knows to stop (a broker in
    a session of its own runs on as an orphan). Python's handlers can only be swapped on
    the main thread; elsewhere the block runs unguarded.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda sig, _frame: caught.append(sig)) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])


class Lifeline:
    """The watchdog process of one supervisor; see the module docstring."""

    def __init__(self, grace: float = 10.0) -> None:
        self.grace = grace
        self.process: subprocess.Popen[bytes] | None = None
        self._pipe: IO[str] | None = None

    def start(self) -> Self:
        read, write = os.pipe()  # not inheritable: no child ever holds the write end
        try:
            self.process = subprocess.Popen(  # this interpreter, no shell  # nosec B603
                [sys.executable, "-m", "tagstream.local.lifeline", str(self.grace)],
                stdin=read,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # neither Ctrl-C nor the supervisor's death stops it
            )
        finally:
            os.close(read)
        self._pipe = os.fdopen(write, "w", buffering=1)
        return self

    def watch(self, pid: int) -> None:
        """Stop the process group led by ``pid`` when the supervisor dies."""
        self._send(f"+{pid}")

    def forget(self, pid: int) -> None:
        """``pid``'s group has been stopped (or exited): do not signal it any more."""
        self._send(f"-{pid}")

    def close(self) -> None:
        """A clean stop: the watchdog exits without signalling anything."""
        if self._pipe is not None:
            self._send(GOODBYE)
            with contextlib.suppress(BrokenPipeError):
                self._pipe.close()
            self._pipe = None
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _send(self, line: str) -> None:
        if self._pipe is not None:
            with contextlib.suppress(BrokenPipeError):  # the watchdog died: pdeathsig remains
                self._pipe.write(line + "\n")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_groups(groups: Iterable[int], grace: float) -> None:
    """SIGTERM every group, wait up to ``grace`` seconds, SIGKILL the ones still alive."""
    groups = set(groups)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(group_alive(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def watchdog(lines: IO[str], grace: float) -> None:
    """The watchdog's loop: keep the set of groups until a goodbye or end-of-file."""
    groups: set[int] = set()
    for line in lines:
        entry = line.strip()
        if entry == GOODBYE:
            return
        if entry[:1] == "+" and entry[1:].isdigit():
            groups.add(int(entry[1:]))
        elif entry[:1] == "-" and entry[1:].isdigit():
            groups.discard(int(entry[1:]))
    stop_groups(groups, grace)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watchdog(sys.stdin, float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
