"""The process supervisor with tiny real child programs: restarts, backoff, clean stop."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tagstream.local.supervisor import Child, RestartPolicy, ServiceSpec, Supervisor
from tests.fixtures.processes import alive


def program(code: str, name: str = "svc") -> ServiceSpec:
    return ServiceSpec(name, [sys.executable, "-c", code])


def wait_until(condition: Callable[[], bool], supervisor: Supervisor, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        supervisor.check()
        time.sleep(0.01)


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RestartPolicy(initial=0.5, maximum=30)
    assert [policy.delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_crashed_child_is_restarted_with_backoff_and_counted(tmp_path: Path) -> None:
    policy = RestartPolicy(initial=0.1, maximum=0.4, reset_after=60)
    starts: list[float] = []
    crash = program("import sys, time; print('up', flush=True); time.sleep(0.05); sys.exit(3)")
    supervisor = Supervisor(
        [crash],
        log_dir=tmp_path,
        policy=policy,
        on_restart=lambda c: starts.append(time.monotonic()),
    )
    with supervisor:
        child = supervisor.children[0]
        exits: list[float] = []

        def exited_again() -> bool:
            if child.state == "backoff" and len(exits) == child.restarts:
                exits.append(time.monotonic())
            return child.restarts >= 4

        wait_until(exited_again, supervisor)
    assert child.last_exit_code is not None
    assert child.restarts == 4
    # each restart waited at least its backoff after the exit: 0.1, 0.2, 0.4, 0.4 (capped)
    waited = [start - exit_ for exit_, start in zip(exits, starts, strict=True)]
    for n, seconds in enumerate(waited, start=1):
        assert seconds >= policy.delay(n) - 0.02, waited
    log = (tmp_path / "svc.log").read_text()
    assert [f"start #{n}:" in log for n in range(5)] == [True] * 5
    assert log.count("up\n") >= 4


def test_a_child_that_stayed_up_long_enough_restarts_after_the_initial_delay(
    tmp_path: Path,
) -> None:
    policy = RestartPolicy(initial=0.1, maximum=30, reset_after=5)
    with Supervisor([program("import sys; sys.exit(1)")], log_dir=tmp_path, policy=policy) as sup:
        child = sup.children[0]
        child.consecutive_failures = 6  # a long crash loop so far
        assert child.process is not None
        child.process.wait()
        started = child.started_at or 0
        sup.check(now=started + 6)  # it ran for 6 s > reset_after
        assert child.state == "backoff"
        assert child.restart_at == pytest.approx(started + 6 + 0.1)
        assert child.consecutive_failures == 1


def test_stop_terminates_every_child_and_what_it_started(tmp_path: Path) -> None:
    sleeper = "import time; time.sleep(60)"
    parent = (
        "import subprocess, sys, time;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "print(p.pid, flush=True); time.sleep(60)"
    )
    specs = [program(sleeper, "a"), program(sleeper, "b"), program(parent, "c")]
    lines: list[tuple[str, str]] = []
    sup = Supervisor(
        specs, log_dir=tmp_path, stop_timeout=5, echo=lambda n, line: lines.append((n, line))
    )
    with sup:
        wait_until(lambda: any(n == "c" for n, _ in lines), sup)
        grandchild = int(next(line for n, line in lines if n == "c"))
        pids = [c.pid for c in sup.children]
        began = time.monotonic()
    assert time.monotonic() - began < 3
    assert all(c.state == "stopped" for c in sup.children)
    assert all(c.process is not None and c.process.poll() is not None for c in sup.children)
    assert not any(alive(pid) for pid in pids if pid)
    deadline = time.monotonic() + 3
    while alive(grandchild):  # reaped by init, which may take a moment
        assert time.monotonic() < deadline, "the grandchild survived"
        time.sleep(0.02)
    sup.check()  # a stopped supervisor restarts nothing
    assert all(c.restarts == 0 for c in sup.children)


def test_child_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ready', flush=True); time.sleep(60)"
    )
    ready: list[str] = []
    sup = Supervisor(
        [program(stubborn)],
        log_dir=tmp_path,
        stop_timeout=0.5,
        echo=lambda _, line: ready.append(line),
    )
    with sup:
        wait_until(lambda: "ready" in ready, sup)
        child: Child = sup.children[0]
        began = time.monotonic()
    took = time.monotonic() - began
    assert 0.5 <= took < 3
    assert child.last_exit_code == -9  # SIGKILL
    assert child.pid is not None
    assert not alive(child.pid)
