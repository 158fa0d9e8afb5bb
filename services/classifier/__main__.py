"""``python -m services.classifier``: the classifier with its probe and metrics server."""

from __future__ import annotations

import uvicorn

from services.classifier.app import create_app
from services.classifier.settings import ClassifierSettings
from shared.observability.logging import configure_logging


def main() -> None:
    settings = ClassifierSettings()
    configure_logging("classifier", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.classifier_host,
        port=settings.classifier_port,
        log_config=None,  # keep the JSON logging configured above
        access_log=False,  # probes and scrapes every few seconds are not news
        timeout_graceful_shutdown=int(settings.classifier_shutdown_timeout_seconds) + 1,
    )


if __name__ == "__main__":
    main()
