"""``tagstream items send``: post a CSV of items to ingest as a scraper, with progress."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tagstream.cli.client_settings import DEV_API_KEY_FILE, load_client_settings
from tagstream.cli.common import err, out
from tagstream.sending import Result, Sender, SendError, Summary, read_rows

app = typer.Typer(help="Send items to ingest as a scraper would.")
MAX_LISTED = 10


@app.command()
def send(
    file: Annotated[
        Path, typer.Argument(help="CSV with title and optional description, id, created_on.")
    ],
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="At most this many items per second, evenly paced; default: as fast as "
            "ingest answers.",
        ),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="The items' source; default: the file's name.")
    ] = None,
    max_attempts: Annotated[
        int, typer.Option(min=1, help="Attempts per item when ingest answers 429 or 503.")
    ] = 10,
) -> None:
    """Post every row of FILE to ingest (POST /v1/items), one item each, then a summary.

    Uses TAGSTREAM_INGEST_URL and TAGSTREAM_INGEST_API_KEY (default: the development key
    `tagstream up` writes); 429 and 503 are retried after their Retry-After. Exit code 0
    when every row was accepted (or was already), 1 otherwise.
    """
    settings = load_client_settings()
    key = settings.api_key()
    if key is None:
        err.print(
            "[red]error:[/red] no API key: set TAGSTREAM_INGEST_API_KEY (one of ingest's "
            f"TAGSTREAM_INGEST_API_KEYS), or run `make run`, which writes {DEV_API_KEY_FILE}"
        )
        raise typer.Exit(2)
    try:
        rows = read_rows(file, source or file.name)
    except SendError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    summary = Summary()
    headers = {"Authorization": f"Bearer {key}"}
    with (
        httpx.Client(base_url=settings.ingest_url, headers=headers, timeout=30) as client,
        Progress(
            TextColumn("sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=err,
        ) as progress,
    ):
        task = progress.add_task("send", total=len(rows), status="")
        try:
            for _ in Sender(client, rate=rate, max_attempts=max_attempts).send_all(rows, summary):
                status = (
                    f"{summary.count(Result.ACCEPTED)} accepted, "
                    f"{summary.count(Result.DUPLICATE)} duplicate"
                )
                progress.update(task, advance=1, status=status)
        except SendError as exc:
            progress.stop()
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from exc
    print_summary(summary, file, len(rows))
    raise typer.Exit(0 if summary.complete else 1)


def print_summary(summary: Summary, file: Path, total: int) -> None:
    per_second = len(summary.outcomes) / summary.seconds if summary.seconds > 0 else 0.0
    out.print(
        f"sent {len(summary.outcomes)} of {total} rows of {file} in {summary.seconds:.1f} s "
        f"({per_second:.0f}/s): {summary.count(Result.ACCEPTED)} accepted, "
        f"{summary.count(Result.DUPLICATE)} duplicate (accepted before), "
        f"{summary.count(Result.REJECTED)} rejected, {summary.count(Result.FAILED)} failed; "
        f"{summary.retries} retries",
        highlight=False,
    )
    problems = [o for o in summary.outcomes if o.result in (Result.REJECTED, Result.FAILED)]
    for outcome in problems[:MAX_LISTED]:
        out.print(
            f"  line {outcome.row.line}: {outcome.result.value}: {outcome.reason}", highlight=False
        )
    if len(problems) > MAX_LISTED:
        out.print(f"  ... and {len(problems) - MAX_LISTED} more", highlight=False)
