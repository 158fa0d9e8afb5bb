"""``python -m services.ingest``: read settings, configure JSON logs, serve with uvicorn."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.observability.logging import configure_logging


def main() -> None:
    try:
        settings = IngestSettings()
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]) for error in exc.errors())
        sys.exit(f"ingest: refusing to start, invalid settings: {problems}")
    configure_logging("ingest", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.ingest_host,
        port=settings.ingest_port,
        log_config=None,  # keep the JSON handler configure_logging installed
        # every item already gets its own log line (item_accepted/duplicate, item id);
        # request counts and statuses are in tagstream_ingest_requests_total
        access_log=False,
    )


if __name__ == "__main__":
    main()
