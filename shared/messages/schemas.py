"""Generate the committed JSON Schemas: ``python -m shared.messages.schemas``.

The committed schemas are the producers' strict contract, and the baseline a change is
checked against: the generator refuses to overwrite one with a change a rolling deploy
would not survive (:mod:`shared.messages.compatibility`), unless told with
``--allow-breaking`` — for a new ``schema_version`` only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.kafka.topics import CATALOGUE
from shared.messages.compatibility import breaking_changes

SCHEMA_DIR = Path(__file__).parent / "schemas"


def render() -> dict[str, str]:
    return {
        f"{topic.default}.json": json.dumps(
            topic.message.model_json_schema(), indent=2, sort_keys=True
        )
        + "\n"
        for topic in CATALOGUE
    }


def incompatible(rendered: dict[str, str], schema_dir: Path) -> dict[str, list[str]]:
    """Committed schema file -> what ``rendered`` breaks in it; unbroken files left out."""
    found: dict[str, list[str]] = {}
    for path in sorted(schema_dir.glob("*.json")):
        current = rendered.get(path.name)
        if current is None:
            found[path.name] = ["no message is declared for this topic any more"]
            continue
        problems = breaking_changes(json.loads(path.read_text()), json.loads(current))
        if problems:
            found[path.name] = problems
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the committed JSON Schemas.")
    parser.add_argument(
        "--allow-breaking",
        action="store_true",
        help="write changes that are not an added optional field (a new schema_version only)",
    )
    args = parser.parse_args(argv)
    rendered = render()
    refused = incompatible(rendered, SCHEMA_DIR)
    if refused and not args.allow_breaking:
        for name, problems in refused.items():
            for problem in problems:
                print(f"{name}: {problem}", file=sys.stderr)
        print(
            "refused: within a schema_version only optional fields may be added "
            "(see shared/messages/compatibility.py); nothing written",
            file=sys.stderr,
        )
        return 1
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in rendered.items():
        (SCHEMA_DIR / name).write_text(text)
        print(SCHEMA_DIR / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
