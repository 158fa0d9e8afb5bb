"""One ``tagstream up`` per folder: a second one says so instead of failing on busy ports.

The lock is an ``flock`` on ``var/up.lock``: the kernel drops it when the holder dies, by
SIGKILL or the OOM killer too, so a crash never leaves a stale lock behind. The file keeps
the holder's pid for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO


class AlreadyRunning(Exception):
    """Another process holds the lock; ``pid`` is its pid when it wrote one."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path, self.pid = path, pid
        holder = f" (pid {pid})" if pid else ""
        super().__init__(f"tagstream up is already running{holder}; stop it first (lock: {path})")


class InstanceLock:
    """Held from :meth:`acquire` until :meth:`release` or the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            text = file.read().strip()
            file.close()
            raise AlreadyRunning(self.path, int(text) if text.isdigit() else None) from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.truncate(0)
            self._file.close()  # closing drops the flock
            self._file = None
