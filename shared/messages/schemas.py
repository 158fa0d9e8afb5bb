"""Generate the committed JSON Schemas: ``python -m shared.messages.schemas``."""

from __future__ import annotations

import json
from pathlib import Path

from shared.kafka.topics import CATALOGUE

SCHEMA_DIR = Path(__file__).parent / "schemas"


def render() -> dict[str, str]:
    return {
        f"{topic.default}.json": json.dumps(
            topic.message.model_json_schema(), indent=2, sort_keys=True
        )
        + "\n"
        for topic in CATALOGUE
    }


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in render().items():
        (SCHEMA_DIR / name).write_text(text)
        print(SCHEMA_DIR / name)


if __name__ == "__main__":
    main()
