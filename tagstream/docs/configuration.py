"""``docs/configuration.md``: every setting of every settings class, from the classes."""

from __future__ import annotations

from tagstream.settings_catalog import CATALOG, fields_by_class

INTRO = """\
# Configuration reference

Every setting tagstream reads, with its default, what it means and who reads it: one
table per settings class. Each is an environment variable (or a line of a `.env` file in
the working directory); list values are comma-separated. Check what a process would use
with `tagstream settings show [--service NAME]` (secrets masked).

Production (`TAGSTREAM_ENVIRONMENT=production`) refuses the development defaults of keys,
secrets and the SQLite database.
"""


# Read by the local runner alone (`tagstream up`, `make run`) straight from the
# environment, not through a settings class; a test finds every TAGSTREAM_ name in the
# code and fails when one is neither a settings field nor listed here.
RUNNER_ONLY = {
    "TAGSTREAM_PROMETHEUS_PORT": ("9090", "Port of the Prometheus `tagstream up` starts."),
    "TAGSTREAM_PROMETHEUS_SCRAPE_INTERVAL": (
        "5s",
        "Scrape interval of the Prometheus `tagstream up` starts.",
    ),
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_configuration() -> str:
    from tagstream.docs import HEADER

    lines = [HEADER + INTRO]
    total = 0
    for entry, fields in fields_by_class():
        total += len(fields)
        cls = entry.load()
        lines.append(f"## {entry.title}\n")
        lines.append(
            f"`{entry.module}.{entry.attribute}`"
            + (f" (`--service {entry.name}`)" if entry.name != "shared" else "")
            + f": {' '.join((cls.__doc__ or '').split())}\n"
        )
        if entry.name not in ("shared", "client"):
            lines.append(f"Also reads every setting of {CATALOG['shared'].title.lower()}.\n")
        lines.append("| variable | type | default | read by | meaning |")
        lines.append("|---|---|---|---|---|")
        for field in fields:
            default = f"`{_cell(field.default)}`" if field.default else "empty"
            lines.append(
                f"| `{field.variable}` | {field.type} | {default} | "
                f"{', '.join(field.readers)} | {_cell(field.description)} |"
            )
        lines.append("")
    lines.append("## Local runner only\n")
    lines.append("Read by `tagstream up` (`make run`) from the environment, for what it starts.\n")
    lines.append("| variable | default | meaning |")
    lines.append("|---|---|---|")
    for variable, (default, meaning) in RUNNER_ONLY.items():
        lines.append(f"| `{variable}` | `{default}` | {meaning} |")
    lines.append("")
    lines.append(f"{total + len(RUNNER_ONLY)} settings in all.\n")
    return "\n".join(lines)
