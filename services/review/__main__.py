"""``python -m services.review``: the review API, web UI, consumer and outbox relay."""

from __future__ import annotations

from services.review.app import create_app
from services.review.settings import ReviewSettings
from shared.http.serve import serve


def main() -> None:
    serve(
        "review",
        ReviewSettings,
        create_app,
        host_field="review_host",
        port_field="review_port",
    )


if __name__ == "__main__":
    main()
