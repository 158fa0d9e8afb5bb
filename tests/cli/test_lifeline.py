"""Children die with their supervisor, however it dies; one ``up`` per folder.

Real processes throughout: a supervisor in a process of its own is SIGKILLed, and every
child, grandchild and the watchdog must be gone and every port free afterwards.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tagstream.local.broker import free_port
from tagstream.local.instance import AlreadyRunning, InstanceLock
from tagstream.local.lifeline import Lifeline, signals_deferred, watchdog
from tests.fixtures.processes import alive, descendants, listening

pytestmark = pytest.mark.chaos

# A child that listens on a port and prints its pid; ``stubborn`` ignores SIGTERM.
SERVER = """
import os, signal, socket, sys, time
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
print("pid", os.getpid(), flush=True)
while True:
    time.sleep(60)
"""

SUPERVISOR = """
import json, sys, threading
from pathlib import Path
from tagstream.local.lifeline import Lifeline
from tagstream.local.supervisor import ServiceSpec, Supervisor
specs = [ServiceSpec(name, argv) for name, argv in json.loads(sys.argv[1])]
lifeline = Lifeline(grace=1.0).start()
supervisor = Supervisor(
    specs, log_dir=Path(sys.argv[2]), lifeline=lifeline,
    echo=lambda name, line: print(name, line, flush=True),
)
supervisor.start()
supervisor.run(threading.Event())
"""


def wait_for(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within}s: {what}"
        time.sleep(0.05)


def server(port: int, mode: str = "plain") -> list[str]:
    return [sys.executable, "-c", SERVER, str(port), mode]


def test_children_grandchildren_and_the_watchdog_die_with_a_sigkilled_supervisor(
    tmp_path: Path,
) -> None:
    ports = [free_port() for _ in range(3)]
    # a plain child; one that ignores SIGTERM; a shell wrapper whose grandchild (not
    # exec'd: `& wait`) ignores SIGTERM and outlives a parent-death signal of the wrapper
    wrapped = " ".join(f"'{a}'" for a in server(ports[2], "stubborn"))
    specs = [
        ("plain", server(ports[0])),
        ("stubborn", server(ports[1], "stubborn")),
        ("wrapper", ["/bin/sh", "-c", f"{wrapped} & wait"]),
    ]
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, json.dumps(specs), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert supervisor.stdout is not None
        pids: list[int] = []
        while len(pids) < 3:
            line = supervisor.stdout.readline()
            assert line, "the supervisor exited before its children started"
            if " pid " in line:
                pids.append(int(line.split()[-1]))
        wait_for(lambda: all(listening(p) for p in ports), 20, "every child listening")
        tree = descendants(supervisor.pid)
        watchdogs = [pid for pid, argv in tree.items() if "tagstream.local.lifeline" in argv]
        assert len(watchdogs) == 1, tree
        assert set(pids) < set(tree)  # the grandchild is in the tree
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait()
        wait_for(lambda: not any(alive(pid) for pid in tree), 20, f"all of {tree} gone")
        wait_for(lambda: not any(listening(p) for p in ports), 5, "every port free")
    finally:
        supervisor.kill()
        supervisor.wait()
        if supervisor.stdout is not None:
            supervisor.stdout.close()


def test_a_clean_close_signals_nothing(tmp_path: Path) -> None:
    port = free_port()
    child = subprocess.Popen(server(port), stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        with Lifeline(grace=1.0) as lifeline:
            lifeline.watch(child.pid)
            wait_for(lambda: listening(port), 20, "the child listening")
        assert lifeline.process is not None
        assert lifeline.process.returncode == 0
        assert child.poll() is None  # still serving: `up` stops its children itself
    finally:
        child.kill()
        child.wait()


def test_the_watchdog_signals_only_groups_still_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopped: list[set[int]] = []
    monkeypatch.setattr(
        "tagstream.local.lifeline.stop_groups",
        lambda groups, grace: stopped.append(set(groups)),
    )
    watchdog(io.StringIO("+10\n+11\n-10\n+12\nnoise\n"), 1.0)  # end-of-file: the supervisor died
    watchdog(io.StringIO("+10\nbye\n"), 1.0)  # a clean close
    assert stopped == [{11, 12}]


def test_a_second_holder_is_refused_with_the_pid_until_the_first_dies(tmp_path: Path) -> None:
    path = tmp_path / "var" / "up.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from tagstream.local.instance import InstanceLock;"
            "lock = InstanceLock(Path(sys.argv[1])); lock.acquire();"
            "print('held', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(AlreadyRunning) as refused:
            InstanceLock(path).acquire()
        assert refused.value.pid == holder.pid
        assert "already running" in str(refused.value)
        holder.send_signal(signal.SIGKILL)  # the kernel drops the lock with its holder
        holder.wait()
        holder.stdout.close()
        lock = InstanceLock(path)
        lock.acquire()
        assert path.read_text().strip() == str(os.getpid())
        lock.release()
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_ctrl_c_while_spawning_comes_after_the_child_is_recorded() -> None:
    recorded: list[subprocess.Popen[bytes]] = []

    def spawn_and_record() -> None:
        with signals_deferred():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C right after the fork
            time.sleep(0.1)  # a handler that ran now would raise before the record below
            recorded.append(child)

    with pytest.raises(KeyboardInterrupt):
        spawn_and_record()
    assert recorded  # the interrupt came after: the caller can stop the child
    recorded[0].kill()
    recorded[0].wait()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
