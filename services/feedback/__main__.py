"""``python -m services.feedback``: the feedback API, consumer and monitor."""

from __future__ import annotations

from services.feedback.app import create_app
from services.feedback.settings import FeedbackSettings
from shared.http.serve import serve


def main() -> None:
    serve(
        "feedback",
        FeedbackSettings,
        create_app,
        host_field="feedback_host",
        port_field="feedback_port",
        shutdown_timeout_field="feedback_shutdown_timeout_seconds",
    )


if __name__ == "__main__":
    main()
