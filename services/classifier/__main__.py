"""``python -m services.classifier``: the classifier with its probe and metrics server."""

from __future__ import annotations

from services.classifier.app import create_app
from services.classifier.settings import ClassifierSettings
from shared.http.serve import serve


def main() -> None:
    serve(
        "classifier",
        ClassifierSettings,
        create_app,
        host_field="classifier_host",
        port_field="classifier_port",
        shutdown_timeout_field="classifier_shutdown_timeout_seconds",
    )


if __name__ == "__main__":
    main()
