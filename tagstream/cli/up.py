"""``tagstream up``: the embedded system (broker, topics, services) under one supervisor.

The broker is started first and stopped last; services are child processes restarted
with exponential backoff when they exit (see ``tagstream.local.supervisor``). Ctrl-C or SIGTERM
stops the services (SIGTERM, then SIGKILL after ``--stop-timeout``), then the broker.
Everything it started dies with it when ``up`` is killed (``tagstream.local.lifeline``),
and one folder runs one ``up`` (``tagstream.local.instance``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Annotated

import structlog
import typer
from dotenv import dotenv_values
from rich.table import Table
from rich.text import Text

from shared.kafka import ensure_topics
from shared.observability.logging import configure_logging, default_format, readable_line
from shared.settings import DEFAULT_RUNBOOK_BASE_URL, Settings
from tagstream.cli.common import err, load_settings, out
from tagstream.local import prometheus as embedded_prometheus
from tagstream.local.broker import EmbeddedBroker
from tagstream.local.instance import AlreadyRunning, InstanceLock
from tagstream.local.lifeline import Lifeline
from tagstream.local.supervisor import RestartPolicy, ServiceSpec, Supervisor

log = structlog.get_logger(__name__)

#: (name, module run with ``python -m``, default port): one line per service ``up`` runs.
#: A service reads its port from TAGSTREAM_<NAME>_PORT, which ``up`` sets.
SERVICES: tuple[tuple[str, str, int], ...] = (
    ("ingest", "services.ingest", 8001),
    ("classifier", "services.classifier", 8002),
    ("review", "services.review", 8003),
    ("feedback", "services.feedback", 8004),
    ("rollout", "services.rollout", 8005),
)
API_KEYS_VAR = "TAGSTREAM_INGEST_API_KEYS"
#: Services whose clients authenticate with API keys; a generated development key is
#: given to each that has none configured.
KEYED_SERVICES = {"ingest": API_KEYS_VAR, "feedback": "TAGSTREAM_FEEDBACK_API_KEYS"}
ADMIN_KEYS_VAR = "TAGSTREAM_ROLLOUT_ADMIN_KEYS"
COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red")


class UpError(Exception):
    """Something the user can fix before ``up`` can run; the message says what."""


@dataclass
class Shutdown:
    """Set by SIGINT/SIGTERM; a second signal makes the stop SIGKILL at once."""

    event: threading.Event = field(default_factory=threading.Event)
    supervisor: Supervisor | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set() and self.supervisor is not None:
            self.supervisor.force_stop()
        self.event.set()


def service_specs(
    env: dict[str, str], api_key: str | None, admin_key: str | None = None
) -> list[ServiceSpec]:
    """The services to run; those whose module is not installed are skipped with a note."""
    specs = []
    for name, module, default_port in SERVICES:
        if importlib.util.find_spec(module) is None:
            err.print(f"[yellow]note:[/yellow] {module} is not installed; {name} not started")
            continue
        port_var = f"TAGSTREAM_{name.upper()}_PORT"
        port = int(env.get(port_var, default_port))
        extra = {port_var: str(port)}
        keys_var = KEYED_SERVICES.get(name)
        if keys_var and api_key is not None and not env.get(keys_var):
            extra[keys_var] = api_key
        if name == "rollout" and admin_key is not None and not env.get(ADMIN_KEYS_VAR):
            extra[ADMIN_KEYS_VAR] = admin_key
        specs.append(ServiceSpec(name, [sys.executable, "-m", module], extra, port))
    return specs


def dev_api_key(settings: Settings, variable: str = API_KEYS_VAR) -> str | None:
    """None when ``variable`` has keys configured; else a fresh development key."""
    configured = os.environ.get(variable) or dotenv_values(".env").get(variable)
    if configured:
        return None
    if settings.environment == "production":
        raise UpError(f"{variable} is not set; production never gets a generated key")
    return secrets.token_urlsafe(24)


def with_prometheus(
    specs: list[ServiceSpec],
    env: dict[str, str],
    var_dir: Path,
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL,
) -> str | None:
    """Add the embedded Prometheus to ``specs`` and point the rollout service at it.

    Returns a warning for the guide when rollouts cannot be decided (none installed).
    An operator's own TAGSTREAM_PROMETHEUS_URL is used as it is.
    """
    url_var = embedded_prometheus.URL_VAR
    if env.get(url_var) or dotenv_values(".env").get(url_var):
        return None
    ports = {s.name: s.port for s in specs if s.port}
    port = int(env.get("TAGSTREAM_PROMETHEUS_PORT", embedded_prometheus.DEFAULT_PORT))
    interval = env.get("TAGSTREAM_PROMETHEUS_SCRAPE_INTERVAL", "5s")
    spec = embedded_prometheus.prometheus_spec(
        ports, var_dir, port=port, scrape_interval=interval, runbook_base_url=runbook_base_url
    )
    if spec is None:
        return (
            "no prometheus installed: rollouts start paused and never advance "
            f"({embedded_prometheus.INSTALL_HINT})"
        )
    specs.insert(0, spec)
    for index, other in enumerate(specs):
        if other.name == "rollout":
            specs[index] = ServiceSpec(
                other.name,
                other.argv,
                {**other.env, url_var: f"http://127.0.0.1:{port}"},
                other.port,
            )
    return None


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.05):
            return True
    except OSError:
        return False


def broker_port(settings: Settings) -> int:
    first = settings.kafka_bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        raise UpError(
            f"the embedded broker listens on 127.0.0.1:PORT, not {first}; "
            "use --external-broker to run against that broker"
        )
    return int(port)


def create_topics(settings: Settings, timeout: float = 15.0) -> list[str]:
    try:
        return asyncio.run(asyncio.wait_for(ensure_topics(settings), timeout))
    except Exception as exc:
        raise UpError(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc!r}") from exc


def exit_text(code: int | None) -> str:
    if code is None:
        return "-"
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return str(code)


def status_table(supervisor: Supervisor) -> Table:
    table = Table("service", "pid", "state", "restarts", "last exit", "port")
    now = time.monotonic()
    for c in supervisor.children:
        state: str = c.state
        if c.state == "backoff" and c.restart_at is not None:
            state = f"backoff ({max(c.restart_at - now, 0):.1f}s)"
        table.add_row(
            c.spec.name,
            str(c.pid or "-"),
            state,
            str(c.restarts),
            exit_text(c.last_exit_code),
            str(c.spec.port or "-"),
        )
    return table


def print_guide(
    settings: Settings, specs: list[ServiceSpec], api_key: str | None, log_dir: Path, key_file: Path
) -> None:
    """Where everything is; plain lines (no box) so that nothing is cut off or wrapped."""
    say = functools.partial(out.print, soft_wrap=True, highlight=False)
    ports = {s.name: s.port for s in specs}
    out.rule("[bold]tagstream is up[/bold]")
    if api_key is not None:
        say(f"development API key: [bold yellow]{api_key}[/bold yellow]")
        say(f"  (also in {key_file} while `up` runs; set {API_KEYS_VAR} to choose your own)")
    if "ingest" in ports:
        url = f"http://127.0.0.1:{ports['ingest']}"
        key = f"$(cat {key_file})" if api_key is not None else f"<one of {API_KEYS_VAR}>"
        say(f"post an item:  KEY={key}")
        say(
            f'  curl -s -X POST {url}/v1/items -H "Authorization: Bearer $KEY" '
            "-H 'Content-Type: application/json' "
            '-d \'{"title": "A transformer for tagging", "description": "NLP", '
            '"url": "https://example.com/post"}\''
        )
    for name, port in ports.items():
        base = f"http://127.0.0.1:{port}"
        if name == "prometheus":
            say(f"{'prometheus:':<14} {base}/targets  {base}/alerts  (rollouts query it)")
        elif port:
            say(f"{name + ':':<14} {base}/healthz  {base}/readyz  {base}/metrics")
    if "review" in ports:
        say(f"review page:   http://127.0.0.1:{ports['review']}/review   (admin: /admin)")
        say("  create a reviewer: tagstream users add NAME --role reviewer --password-stdin")
    if "feedback" in ports:
        say(
            f"report a tag:  curl -s -X POST http://127.0.0.1:{ports['feedback']}/v1/reports "
            "-H \"Authorization: Bearer $KEY\" -H 'Content-Type: application/json' "
            '-d \'{"item_id": "<id>", "suggested_tag": "mlops", "end_user_id": "<user>"}\''
        )
    say(f"decisions:     tagstream topics tail {settings.topic_classified}")
    say(f"dead letters:  tagstream topics tail {settings.topic_dlq} --from-beginning")
    say("               tagstream dlq replay --dry-run   (then without --dry-run)")
    say(f"logs:          {log_dir}/<service>.log   (broker: {log_dir}/broker.log)")
    say("stop:          Ctrl-C (a second Ctrl-C kills at once)")
    out.rule()


def echo_line(name: str, line: str) -> None:
    names = ["prometheus", *(n for n, _, _ in SERVICES)]
    colour = COLOURS[names.index(name) % len(COLOURS)]
    out.print(Text.assemble((f"{name:<10} | ", colour), line), soft_wrap=True)


def echo_for(settings: Settings) -> Callable[[str, str], None]:
    """Console lines when ``up`` itself logs for a person, the JSON as it is otherwise."""
    console = (settings.log_format or default_format()) == "console"
    return echo_readable if console else echo_line


def echo_readable(name: str, line: str) -> None:
    """``echo_line`` with the services' JSON records shown as console lines."""
    echo_line(name, readable_line(line))


def up(
    external_broker: Annotated[
        bool,
        typer.Option(
            "--external-broker",
            help="Use the broker at TAGSTREAM_KAFKA_BOOTSTRAP_SERVERS instead of starting one.",
        ),
    ] = False,
    logs: Annotated[
        bool, typer.Option("--logs/--no-logs", help="Copy service output to the terminal.")
    ] = True,
    log_dir: Annotated[Path, typer.Option(help="Folder of <service>.log files.")] = Path("var/log"),
    stop_timeout: Annotated[
        float, typer.Option(min=0, help="Seconds services get after SIGTERM before SIGKILL.")
    ] = 20.0,
) -> None:
    """Run the broker, the topics and every service, restarting services that crash.

    The embedded broker keeps data in memory: stopping `up` loses every topic. Without
    TAGSTREAM_INGEST_API_KEYS a development key is generated and printed (never in
    production). Ctrl-C or SIGTERM stops everything; the exit code is then 0.
    """
    settings = load_settings()
    configure_logging("up", settings.log_level, settings.log_format)
    shutdown = Shutdown()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, shutdown)
    log_dir.mkdir(parents=True, exist_ok=True)
    key_file = log_dir.parent / "dev-api-key"
    admin_key_file = log_dir.parent / "dev-admin-key"
    instance = InstanceLock(log_dir.parent / "up.lock")
    try:
        instance.acquire()
    except AlreadyRunning as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    # Started first and closed last: whatever starts in between dies with `up`, even when
    # `up` is SIGKILLed (see tagstream.local.lifeline).
    lifeline = Lifeline(grace=stop_timeout).start()
    broker: EmbeddedBroker | None = None
    supervisor: Supervisor | None = None
    written: list[Path] = []
    code = 0
    try:
        api_key = dev_api_key(settings)
        admin_key = dev_api_key(settings, ADMIN_KEYS_VAR)
        if not external_broker:
            port = broker_port(settings)
            if listening(port):
                raise UpError(
                    f"something already listens on 127.0.0.1:{port} (another `tagstream up`?); "
                    "stop it, or pass --external-broker to use it"
                )
            broker = EmbeddedBroker(
                port, log_file=log_dir / "broker.log", own_session=True, die_with_parent=True
            )
            try:
                broker.start()
            except (OSError, RuntimeError, TimeoutError) as exc:
                raise UpError(
                    f"the embedded broker did not start: {exc} (see {broker.log_file})"
                ) from exc
            finally:
                if broker.process is not None:
                    lifeline.watch(broker.process.pid)
            log.info(
                "broker_started",
                bootstrap_servers=broker.bootstrap_servers,
                pid=broker.process.pid if broker.process else None,
            )
        created = create_topics(settings)
        log.info("topics_ready", created=created, partitions=settings.kafka_partitions)
        specs = service_specs(dict(os.environ), api_key, admin_key)
        warning = with_prometheus(
            specs, dict(os.environ), log_dir.parent, settings.runbook_base_url
        )
        busy = [f"{s.name} ({s.port})" for s in specs if s.port and listening(s.port)]
        if busy:
            raise UpError(f"ports already in use: {', '.join(busy)}; is another `up` running?")
        for secret, path in ((api_key, key_file), (admin_key, admin_key_file)):
            if secret is not None:
                path.touch(mode=0o600)
                path.chmod(0o600)  # before the secret is written, also if it existed
                path.write_text(secret + "\n")
                written.append(path)
        if shutdown.event.is_set():
            return
        sup = Supervisor(
            specs,
            log_dir=log_dir,
            policy=RestartPolicy(),
            stop_timeout=stop_timeout,
            # the log files keep the services' JSON; a person at a terminal reads lines
            echo=(echo_for(settings) if logs else None),
            lifeline=lifeline,
        )
        sup.on_restart = lambda _child: out.print(status_table(sup))
        supervisor = shutdown.supervisor = sup.start()
        print_guide(settings, specs, api_key, log_dir, key_file)
        if admin_key is not None:
            out.print(
                f"rollouts:      tagstream rollout status   (admin key in {admin_key_file}; "
                f"set {ADMIN_KEYS_VAR} to choose your own)",
                soft_wrap=True,
                highlight=False,
            )
        if warning:
            err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        code = supervise(supervisor, broker, shutdown.event)
    except UpError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        code = 1
    finally:
        if supervisor is not None:
            err.print("stopping services…")
            supervisor.stop()
            out.print(status_table(supervisor))
        if broker is not None:
            broker.stop()
            err.print("broker stopped")
        for path in written:
            path.unlink(missing_ok=True)
        lifeline.close()
        instance.release()
    if code:
        raise typer.Exit(code)


def supervise(supervisor: Supervisor, broker: EmbeddedBroker | None, stop: threading.Event) -> int:
    """Run until ``stop``; announce each service once it listens. 1 if the broker died."""
    announced: set[int] = set()
    while not stop.wait(0.1):
        supervisor.check()
        if broker is not None and broker.process is not None and broker.process.poll() is not None:
            log.error("broker_exited", exit_code=broker.process.returncode)
            err.print("[red]error:[/red] the embedded broker exited; stopping (its data is lost)")
            return 1
        for child in supervisor.children:
            pid, port = child.pid, child.spec.port
            if (
                child.state == "running"
                and pid
                and port
                and pid not in announced
                and listening(port)
            ):
                announced.add(pid)
                out.print(
                    f"[green]✓[/green] {child.spec.name} listening on http://127.0.0.1:{port}"
                )
    return 0
