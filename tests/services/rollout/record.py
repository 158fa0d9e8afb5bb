"""Record real Prometheus API responses for the analysis unit tests.

Run ``.venv/bin/python -m tests.services.rollout.record`` after changing a query or a
scenario: it starts /usr/bin/prometheus against the scenarios' exporter (helpers.py), runs
every query of each scenario and writes ``recorded/<scenario>.json``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from services.rollout.analysis import build_queries
from tests.services.rollout.helpers import SCENARIOS, WINDOW_SECONDS, scraped

RECORDED = Path(__file__).parent / "recorded"


def main() -> None:
    RECORDED.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir, scraped(Path(workdir), SCENARIOS) as server:
        for scenario in SCENARIOS:
            queries = build_queries(scenario.canary.name, scenario.stable.name, WINDOW_SECONDS)
            promqls = dict.fromkeys(p for named in queries.values() for p in named.values())
            record = {
                "description": scenario.description,
                "canary": scenario.canary.name,
                "stable": scenario.stable.name,
                "window_seconds": WINDOW_SECONDS,
                "responses": {promql: server.query(promql) for promql in promqls},
            }
            path = RECORDED / f"{scenario.name}.json"
            path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
            print(f"recorded {path}")


if __name__ == "__main__":
    main()
