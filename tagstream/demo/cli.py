"""``tagstream demo``: run the loop and its control on the dataset, write the report.

Ctrl-C or SIGTERM stops the run in progress: every process it started (broker,
Prometheus, services, training) is stopped before the command exits.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from shared.console import err, load_settings, out


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder of report.json, report.html and both runs.")
    ],
    fast: Annotated[
        bool, typer.Option("--fast", help="Short intervals and a quick replay: a few minutes.")
    ] = False,
    bad_candidate: Annotated[
        bool,
        typer.Option(
            "--bad-candidate",
            help="Also register a candidate trained on shuffled labels: the gate or the "
            "rollback must stop it.",
        ),
    ] = False,
) -> None:
    """Show the data flywheel: replay the dataset through a real system, with a control run.

    The loop run's reviewers' labels retrain the model and candidates roll out by
    themselves; the control run is the same stream with retraining off. Everything runs
    in OUT (its own registries, databases and free ports): the first model is trained on
    the earliest posts, the rest is replayed, and OUT/report.json and OUT/report.html are
    written. TAGSTREAM_DEMO_* settings tune it (docs/demo.md).
    """
    from shared.observability.logging import configure_logging
    from tagstream.demo.flywheel import DemoFailed, run_flywheel
    from tagstream.demo.settings import DemoSettings, demo_settings

    load_settings(DemoSettings)  # bad variables: a one-line error, exit 2
    configure_logging("demo", "WARNING")  # the progress display, not the processes' events
    settings = demo_settings(fast=fast)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = run_flywheel(out_dir, settings, bad_candidate=bad_candidate)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/yellow] every process of the demo was stopped")
        raise typer.Exit(130) from None
    except DemoFailed as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        signal.signal(signal.SIGTERM, previous)
    out.print(f"report: {report}", highlight=False, soft_wrap=True)
    sys.stdout.flush()
