"""``python -m services.rollout``: the rollout controller and its API."""

from __future__ import annotations

from services.rollout.app import create_app
from services.rollout.settings import RolloutSettings
from shared.http.serve import serve


def main() -> None:
    serve(
        "rollout",
        RolloutSettings,
        create_app,
        host_field="rollout_host",
        port_field="rollout_port",
    )


if __name__ == "__main__":
    main()
