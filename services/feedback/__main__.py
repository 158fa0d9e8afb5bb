"""``python -m services.feedback``: read settings, configure JSON logs, serve with uvicorn."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from services.feedback.app import create_app
from services.feedback.settings import FeedbackSettings
from shared.observability.logging import configure_logging


def main() -> None:
    try:
        settings = FeedbackSettings()
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]) for error in exc.errors())
        sys.exit(f"feedback: refusing to start, invalid settings: {problems}")
    configure_logging("feedback", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.feedback_host,
        port=settings.feedback_port,
        log_config=None,
    )


if __name__ == "__main__":
    main()
