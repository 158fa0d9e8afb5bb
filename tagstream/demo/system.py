"""One run's system: the embedded default in a folder of its own, on free ports.

A :class:`DemoSystem` owns a broker, a Prometheus and the five services (under the
``tagstream up`` supervisor), its own SQLite database and model registry in its folder,
and generated keys. ``stop()`` ends every process it started; the demo calls it on every
way out (normal end, error, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tagstream.local import prometheus as embedded_prometheus
from tagstream.local.broker import EmbeddedBroker, free_port
from tagstream.local.supervisor import RestartPolicy, ServiceSpec, Supervisor

#: The ports a developer's own `tagstream up` uses: never taken by a demo.
RESERVED_PORTS = frozenset({8001, 8002, 8003, 8004, 8005, 9090, 9092})
SERVICES = ("ingest", "classifier", "review", "feedback", "rollout")


class DemoError(Exception):
    """The demo's system could not be set up; the message says what and where to look."""


def demo_port(taken: set[int]) -> int:
    """A free loopback port, never a reserved one nor one already handed out."""
    while True:
        port = free_port()
        if port not in RESERVED_PORTS and port not in taken:
            taken.add(port)
            return port


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without its TAGSTREAM_* settings, plus ``extra``.

    The demo's processes answer to the demo alone: an operator's database, registry or
    ports in the shell must not leak into the run (nor the run into them).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGSTREAM_")}
    env.update(extra)
    return env


@dataclass
class DemoSystem:
    """The system of one run (``loop`` or ``control``) in ``folder``."""

    name: str
    folder: Path
    settings: Mapping[str, str]
    """TAGSTREAM_* variables of this run beyond ports, stores and keys."""
    ports: dict[str, int] = field(default_factory=dict)
    ingest_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    feedback_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admin_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    broker: EmbeddedBroker | None = None
    supervisor: Supervisor | None = None

    @property
    def log_dir(self) -> Path:
        return self.folder / "log"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.folder / 'tagstream.db'}"

    @property
    def registry_dir(self) -> Path:
        return self.folder / "registry"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def env(self) -> dict[str, str]:
        """Every TAGSTREAM_* variable the run's processes get."""
        values = {
            "TAGSTREAM_ENVIRONMENT": "development",
            "TAGSTREAM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.ports['broker']}",
            "TAGSTREAM_DATABASE_URL": self.database_url,
            "TAGSTREAM_REGISTRY_DIR": str(self.registry_dir),
            "TAGSTREAM_INGEST_API_KEYS": self.ingest_key,
            "TAGSTREAM_FEEDBACK_API_KEYS": self.feedback_key,
            "TAGSTREAM_ROLLOUT_ADMIN_KEYS": self.admin_key,
            "TAGSTREAM_ROLLOUT_ADMIN_KEY": self.admin_key,
            "TAGSTREAM_ROLLOUT_URL": self.url("rollout"),
            "TAGSTREAM_PROMETHEUS_URL": self.url("prometheus"),
            **{f"TAGSTREAM_{s.upper()}_PORT": str(self.ports[s]) for s in SERVICES},
            **self.settings,
        }
        return child_env(values)

    # --- set-up -------------------------------------------------------------------------

    def start_broker(self) -> None:
        """Pick the ports, start the broker and create the topics."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        taken: set[int] = set()
        for name in ("broker", "prometheus", *SERVICES):
            self.ports[name] = demo_port(taken)
        broker = EmbeddedBroker(
            self.ports["broker"], log_file=self.log_dir / "broker.log", own_session=True
        )
        self.broker = broker
        try:
            broker.start()
        except (OSError, RuntimeError, TimeoutError) as exc:
            raise DemoError(f"the broker did not start: {exc} (see {broker.log_file})") from exc
        self.tagstream("topics", "create")
        self.tagstream("db", "upgrade")

    def tagstream(self, *args: str, stdin: str | None = None) -> str:
        """Run a ``tagstream`` command against this run; its standard output."""
        done = subprocess.run(  # this interpreter and our own CLI, no shell  # nosec B603
            [sys.executable, "-m", "tagstream.cli.main", *args],
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        return self._checked(args, done)

    def _checked(self, args: tuple[str, ...], done: subprocess.CompletedProcess[str]) -> str:
        """Log a command's outcome in commands.log; its output, or DemoError if it failed."""
        with (self.log_dir / "commands.log").open("a", encoding="utf-8") as log:
            log.write(f"$ tagstream {' '.join(args)}  (exit {done.returncode})\n")
            log.write(done.stdout[-4000:] + done.stderr[-4000:] + "\n")
        if done.returncode != 0:
            raise DemoError(
                f"`tagstream {' '.join(args)}` failed (exit {done.returncode}): "
                f"{done.stderr.strip()[-1500:]}"
            )
        return done.stdout

    async def train_async(self, data: Path) -> str:
        """``train`` without blocking the replay; cancelling it kills the training."""
        args = ("model", "train", "--data", str(data))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tagstream.cli.main",
            *args,
            env=self.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await process.communicate()
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            raise
        done = subprocess.CompletedProcess(
            args, process.returncode or 0, stdout.decode(), stderr.decode()
        )
        return self._checked(args, done).strip().splitlines()[-1]

    def train(self, data: Path) -> str:
        """``tagstream model train --data``: the version registered (and announced)."""
        return self.tagstream("model", "train", "--data", str(data)).strip().splitlines()[-1]

    def add_reviewer(self, name: str) -> str:
        """A reviewer account; its API token."""
        return self.tagstream("users", "add", name, "--role", "reviewer").strip().splitlines()[-1]

    def add_watcher(self, name: str = "demo-admin") -> str:
        """An admin account a person logs in with to watch the queue; its password."""
        password = secrets.token_urlsafe(9)
        self.tagstream("users", "add", name, "--role", "admin", "--password-stdin", stdin=password)
        return password

    def start_services(self, timeout: float = 180.0) -> None:
        """Prometheus and the five services under the supervisor, once each answers ready."""
        env = self.env()
        specs = [
            ServiceSpec(name, [sys.executable, "-m", f"services.{name}"], env, self.ports[name])
            for name in SERVICES
        ]
        prometheus = embedded_prometheus.prometheus_spec(
            {s.name: s.port for s in specs if s.port},
            self.folder,
            port=self.ports["prometheus"],
            scrape_interval=self.settings.get("TAGSTREAM_PROMETHEUS_SCRAPE_INTERVAL", "5s"),
        )
        if prometheus is None:
            raise DemoError(
                "no prometheus installed: rollouts cannot be decided "
                f"({embedded_prometheus.INSTALL_HINT})"
            )
        # Kept before it starts anything: a Ctrl-C between two spawns still stops the first.
        self.supervisor = Supervisor(
            [prometheus, *specs], log_dir=self.log_dir, policy=RestartPolicy(), stop_timeout=15
        )
        self.supervisor.start()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = [*SERVICES, "prometheus"]
        while pending:
            assert self.supervisor is not None
            self.supervisor.check()
            name = pending[0]
            path = "/-/ready" if name == "prometheus" else "/readyz"
            try:
                if httpx.get(self.url(name) + path, timeout=2).status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise DemoError(
                    f"{name} of the {self.name} run not ready after {timeout:.0f}s "
                    f"(see {self.log_dir / name}.log)"
                )
            time.sleep(0.2)

    def check(self) -> None:
        """Let the supervisor restart what crashed; fail when the broker is gone."""
        if self.supervisor is not None:
            self.supervisor.check()
        process = self.broker.process if self.broker is not None else None
        if process is not None and process.poll() is not None:
            raise DemoError(f"the broker of the {self.name} run exited ({process.returncode})")

    def stop(self) -> None:
        """Stop the services, Prometheus, then the broker. Safe to call twice."""
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.broker is not None:
            self.broker.stop()
