"""``python -m services.ingest``: the ingest API."""

from __future__ import annotations

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.http.serve import serve


def main() -> None:
    serve(
        "ingest",
        IngestSettings,
        create_app,
        host_field="ingest_host",
        port_field="ingest_port",
    )


if __name__ == "__main__":
    main()
