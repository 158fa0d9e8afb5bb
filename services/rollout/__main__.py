"""``python -m services.rollout``: read settings, configure JSON logs, serve with uvicorn."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from services.rollout.app import create_app
from services.rollout.settings import RolloutSettings
from shared.observability.logging import configure_logging


def main() -> None:
    try:
        settings = RolloutSettings()
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]) for error in exc.errors())
        sys.exit(f"rollout: refusing to start, invalid settings: {problems}")
    configure_logging("rollout", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.rollout_host,
        port=settings.rollout_port,
        log_config=None,
    )


if __name__ == "__main__":
    main()
