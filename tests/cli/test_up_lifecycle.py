"""``tagstream up`` as a real process on free ports: what happens when it, or its broker, dies.

- SIGKILLed (as the OOM killer would), it leaves nothing behind: broker, Prometheus and the
  five services are gone and every port is free, so the next ``up`` starts.
- A second ``up`` in the same folder while one runs says so in one line and exits 1.
- The embedded broker keeps topics in memory; when it dies, ``up`` says so and stops
  everything rather than serve on without the data. Paused (SIGSTOP) it is not dead: the
  services turn unready, and ready again on SIGCONT, without a restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tagstream.cli.up import SERVICES
from tagstream.local.broker import free_port
from tests.fixtures.db import migrated
from tests.fixtures.processes import alive, descendants, listening

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.chaos]


@dataclass
class Up:
    process: subprocess.Popen[str]
    ports: dict[str, int]
    cwd: Path
    env: dict[str, str]

    def wait_listening(self, within: float = 180) -> None:
        deadline = time.monotonic() + within
        while not all(listening(p) for p in self.ports.values()):
            if self.process.poll() is not None:
                raise AssertionError(f"up exited early: {self.output()}")
            assert time.monotonic() < deadline, f"not all listening: {self.logs()}"
            time.sleep(0.2)

    def output(self) -> str:
        out, err = self.process.communicate(timeout=30)
        return f"{out[-3000:]}\n{err[-3000:]}"

    def logs(self) -> str:
        return "\n".join(
            f"{log.name}: {log.read_text()[-800:]}" for log in (self.cwd / "var/log").glob("*.log")
        )


def start_up(tmp_path: Path) -> Up:
    ports = {name: free_port() for name, _, _ in SERVICES}
    if Path("/usr/bin/prometheus").exists():  # `up` runs it when it is installed
        ports["prometheus"] = free_port()
    broker = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGSTREAM_")}
    env.update({f"TAGSTREAM_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    env.update(
        TAGSTREAM_ENVIRONMENT="test",
        TAGSTREAM_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{broker}",
        TAGSTREAM_DATABASE_URL=migrated(f"sqlite:///{tmp_path / 'tagstream.db'}"),
        TAGSTREAM_REGISTRY_DIR=str(tmp_path / "registry"),
        TAGSTREAM_LOG_LEVEL="WARNING",
    )
    ports["broker"] = broker
    process = subprocess.Popen(
        [sys.executable, "-m", "tagstream.cli.main", "up", "--no-logs", "--stop-timeout", "5"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Up(process, ports, tmp_path, env)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    running = start_up(tmp_path)
    tree: dict[int, str] = {}
    try:
        running.wait_listening()
        tree.update(descendants(running.process.pid))
        yield running
    finally:
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGINT)
            try:
                running.process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                running.process.kill()
                running.process.communicate()
        for pid in tree:  # whatever a failed test left behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def all_gone(tree: dict[int, str], ports: dict[str, int], within: float) -> None:
    deadline = time.monotonic() + within
    while any(alive(pid) for pid in tree) or any(listening(p) for p in ports.values()):
        left = {pid: argv[:80] for pid, argv in tree.items() if alive(pid)}
        busy = {name: port for name, port in ports.items() if listening(port)}
        assert time.monotonic() < deadline, f"still running: {left}; ports in use: {busy}"
        time.sleep(0.1)


def test_a_sigkilled_up_leaves_no_process_and_no_port_behind(up: Up) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "tagstream.cli.main", "up", "--no-logs"],
        cwd=up.cwd,
        env=up.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert "already running" in lines[0]
    assert f"pid {up.process.pid}" in lines[0]

    tree = descendants(up.process.pid)
    started = {name for name, _, _ in SERVICES} | {"broker"}
    for name in started:
        module = f"services.{name}"
        found = [a for a in tree.values() if module in a or (name == "broker" and "tansu" in a)]
        assert found, f"{name} not among {tree}"
    up.process.send_signal(signal.SIGKILL)
    up.process.communicate(timeout=30)
    all_gone(tree, up.ports, within=30)


def test_a_dead_embedded_broker_stops_everything_and_says_so(up: Up) -> None:
    tree = descendants(up.process.pid)
    (broker,) = (pid for pid, argv in tree.items() if "tansu" in argv and " broker " in argv)
    os.kill(broker, signal.SIGKILL)
    _, err = up.process.communicate(timeout=90)
    assert up.process.returncode == 1
    assert "the embedded broker exited" in err
    assert "data is lost" in err
    all_gone(tree, up.ports, within=30)


def readyz(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def wait_statuses(ports: dict[str, int], status: int, within: float) -> None:
    deadline = time.monotonic() + within
    while (got := {name: readyz(p) for name, p in ports.items()}) != dict.fromkeys(ports, status):
        assert time.monotonic() < deadline, f"readiness not all {status}: {got}"
        time.sleep(0.5)


def test_a_paused_broker_makes_the_services_unready_and_resume_brings_them_back(up: Up) -> None:
    consumers = {name: up.ports[name] for name in ("ingest", "review", "feedback")}
    wait_statuses(consumers, 200, within=120)
    tree = descendants(up.process.pid)
    (broker,) = (pid for pid, argv in tree.items() if "tansu" in argv and " broker " in argv)
    os.kill(broker, signal.SIGSTOP)
    try:
        wait_statuses(consumers, 503, within=60)
        assert up.process.poll() is None  # paused is not dead: up keeps everything running
    finally:
        os.kill(broker, signal.SIGCONT)
    wait_statuses(consumers, 200, within=120)
    assert up.process.poll() is None
    assert all(alive(pid) for pid in tree)  # nothing was restarted: the same processes
