"""``python -m services.review``: the review API, web UI, consumer and outbox relay."""

from __future__ import annotations

import uvicorn

from services.review.app import create_app
from services.review.settings import ReviewSettings
from shared.observability.logging import configure_logging


def main() -> None:
    settings = ReviewSettings()
    configure_logging("review", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.review_host,
        port=settings.review_port,
        log_config=None,  # keep the JSON logging configured above
        access_log=False,
    )


if __name__ == "__main__":
    main()
