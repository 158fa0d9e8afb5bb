"""``tagstream rollout``: start, watch, pause, resume and abort canary rollouts.

The commands talk to the rollout service's HTTP API (``TAGSTREAM_ROLLOUT_URL``, default
http://127.0.0.1:8005) with an admin key: ``TAGSTREAM_ROLLOUT_ADMIN_KEY``, or the
development key ``tagstream up`` writes to ``var/dev-admin-key`` while it runs.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from tagstream.cli.client_settings import (
    DEV_ADMIN_KEY_FILE,
    ClientSettings,
    load_client_settings,
)
from tagstream.cli.common import err, out

app = typer.Typer(help="Canary rollouts of model versions, decided by Prometheus metrics.")


def _admin_key(settings: ClientSettings) -> str:
    key = settings.admin_key()
    if key:
        return key
    err.print(
        "[red]error:[/red] no admin key: set TAGSTREAM_ROLLOUT_ADMIN_KEY (one of the "
        "rollout service's TAGSTREAM_ROLLOUT_ADMIN_KEYS), or run `tagstream up`, which "
        f"writes a development key to {DEV_ADMIN_KEY_FILE}"
    )
    raise typer.Exit(2)


def _call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    settings = load_client_settings()
    url = settings.rollout_url.rstrip("/")
    headers = {"Authorization": f"Bearer {_admin_key(settings)}"}
    try:
        response = httpx.request(method, url + path, json=body, headers=headers, timeout=15)
    except httpx.HTTPError as exc:
        err.print(
            f"[red]error:[/red] the rollout service at {url} did not answer ({exc!r}); "
            "is `tagstream up` (or the rollout deployment) running?"
        )
        raise typer.Exit(1) from exc
    try:
        data: dict[str, Any] = response.json()
    except ValueError:
        data = {"detail": [{"reason": response.text[:500]}]}
    if response.status_code >= 400:
        reasons = "; ".join(str(d.get("reason")) for d in data.get("detail", []))
        err.print(f"[red]error ({response.status_code}):[/red] {reasons}", highlight=False)
        raise typer.Exit(1)
    return data


def _show(rollout: dict[str, Any]) -> None:
    out.print(
        f"{rollout['version']}: [bold]{rollout['state']}[/bold] at step {rollout['step']} "
        f"(weight {rollout['weight']:.0%}, {rollout['failures']} failed, "
        f"{rollout['inconclusives']} inconclusive) — {rollout['reason']}",
        highlight=False,
    )


@app.command()
def start(
    version: Annotated[str, typer.Argument(help="A registered candidate version.")],
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "started by an operator",
) -> None:
    """Start the rollout of VERSION at the first step (shadow by default)."""
    _show(_call("POST", "/v1/rollouts", {"version": version, "reason": reason}))


@app.command()
def pause(reason: Annotated[str, typer.Option()] = "paused by an operator") -> None:
    """Hold the active rollout at its step: no analysis, no advance, traffic unchanged."""
    _show(_call("POST", "/v1/rollouts/pause", {"reason": reason}))


@app.command()
def resume(reason: Annotated[str, typer.Option()] = "resumed by an operator") -> None:
    """Resume a paused rollout; its step's interval starts again."""
    _show(_call("POST", "/v1/rollouts/resume", {"reason": reason}))


@app.command()
def abort(reason: Annotated[str, typer.Option()] = "aborted by an operator") -> None:
    """Roll the active canary back now (weight 0, status rolled_back)."""
    _show(_call("POST", "/v1/rollouts/abort", {"reason": reason}))


@app.command()
def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole status as JSON.")
    ] = False,
    analyses: Annotated[int, typer.Option(min=0, help="Analyses shown per rollout.")] = 3,
) -> None:
    """Rollouts, newest first, with their latest analyses and every check's verdict."""
    data = _call("GET", "/v1/rollouts")
    if as_json:
        typer.echo(json.dumps(data, indent=2))  # plain: rich would wrap long lines
        return
    prometheus = data["prometheus"]
    if not prometheus["configured"]:
        err.print("[yellow]no Prometheus configured: rollouts stay paused[/yellow]")
    if not data["rollouts"]:
        out.print("no rollouts yet: `tagstream rollout start VERSION`")
    for rollout in data["rollouts"]:
        _show(rollout)
        for analysis in rollout["analyses"][:analyses]:
            table = Table(
                "check",
                "verdict",
                "values",
                "threshold",
                title=f"{analysis['analysed_at']} step {analysis['step']}: "
                f"{analysis['verdict']} -> {analysis['action']}",
                title_justify="left",
            )
            for check in analysis["checks"]:
                values = ", ".join(
                    f"{k}={'-' if v is None else f'{v:.4g}'}" for k, v in check["values"].items()
                )
                table.add_row(check["check"], check["verdict"], values, check["threshold"])
            out.print(table)
