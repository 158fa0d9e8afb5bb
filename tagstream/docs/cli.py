"""``docs/cli.md``: every ``tagstream`` command with its usage, help and options, from the
command line itself (the same Click objects ``--help`` prints)."""

from __future__ import annotations

from typing import Any

import typer

WIDTH = 100


def _commands(group: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    """(path, command) for the group and everything under it, depth first, as listed."""
    from tagstream.cli.main import COMMANDS

    found = [(path, group)]
    ctx = typer.Context(group, info_name=" ".join(path))
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if len(path) == 1 and name in COMMANDS:
            command = COMMANDS[name].load(name)  # the real command, not the lazy listing
        if command is None or getattr(command, "hidden", False):
            continue
        if hasattr(command, "list_commands"):
            found.extend(_commands(command, [*path, name]))
        else:
            found.append(([*path, name], command))
    return found


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _section(path: list[str], command: Any) -> list[str]:
    ctx = typer.Context(command, info_name=" ".join(path), terminal_width=WIDTH)
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = [f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`", ""]
    lines += ["```", f"{' '.join(path)} {usage}".rstrip(), "```", ""]
    text = (command.help or "").strip()
    if text:
        lines += [typer_help(text), ""]
    records = [
        (param.param_type_name, param.get_help_record(ctx))
        for param in command.params
        if not getattr(param, "hidden", False)
    ]
    for kind in ("argument", "option"):
        rows = [record for param_kind, record in records if param_kind == kind and record]
        if rows:
            lines += [f"| {kind} | help |", "|---|---|"]
            lines += [f"| `{_cell(name)}` | {_cell(help_text)} |" for name, help_text in rows]
            lines.append("")
    return lines


def typer_help(text: str) -> str:
    """A docstring as Markdown paragraphs (Click's ``\\b`` no-rewrap marks dropped)."""
    paragraphs = [p.replace("\b\n", "").strip() for p in text.split("\n\n")]
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p)


def render_cli() -> str:
    from tagstream.cli.main import app
    from tagstream.docs import HEADER

    root = typer.main.get_command(app)
    lines = [
        HEADER + "# Command-line reference\n",
        "Every `tagstream` command, as `tagstream COMMAND --help` prints it. Settings the "
        "commands read are in [configuration.md](configuration.md).\n",
    ]
    for path, command in _commands(root, ["tagstream"]):
        lines += _section(path, command)
    return "\n".join(lines).rstrip() + "\n"
