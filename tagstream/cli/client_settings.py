"""Where the commands that talk to running services find them, and with which key.

``tagstream items send`` posts to ingest as a scraper; ``tagstream rollout`` calls the
rollout service's admin API. Each key falls back to the development key ``tagstream up``
writes under ``var/`` while it runs, so after ``make run`` nothing needs setting.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, JsonValue, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_API_KEY_FILE = Path("var/dev-api-key")
DEV_ADMIN_KEY_FILE = Path("var/dev-admin-key")
# who reads each field, for docs/configuration.md (tagstream.settings_catalog)
ITEMS_SEND: dict[str, JsonValue] = {"read_by": "`tagstream items send`"}
ROLLOUT: dict[str, JsonValue] = {"read_by": "`tagstream rollout`"}


class ClientSettings(BaseSettings):
    """Settings of the CLI's HTTP clients (``TAGSTREAM_INGEST_URL``, ...)."""

    model_config = SettingsConfigDict(
        env_prefix="TAGSTREAM_", env_file=".env", extra="ignore", frozen=True
    )

    ingest_url: str = Field(
        "http://127.0.0.1:8001",
        description="Base URL of the ingest service that `tagstream items send` posts to.",
        json_schema_extra=ITEMS_SEND,
    )
    ingest_api_key: SecretStr | None = Field(
        None,
        description="Scraper API key `tagstream items send` uses (one of the ingest "
        f"service's TAGSTREAM_INGEST_API_KEYS); default: {DEV_API_KEY_FILE}, written by "
        "`tagstream up`.",
        json_schema_extra=ITEMS_SEND,
    )
    rollout_url: str = Field(
        "http://127.0.0.1:8005",
        description="Base URL of the rollout service that `tagstream rollout` calls.",
        json_schema_extra=ROLLOUT,
    )
    rollout_admin_key: SecretStr | None = Field(
        None,
        description="Admin key `tagstream rollout` uses (one of the rollout service's "
        f"TAGSTREAM_ROLLOUT_ADMIN_KEYS); default: {DEV_ADMIN_KEY_FILE}, written by "
        "`tagstream up`.",
        json_schema_extra=ROLLOUT,
    )

    def api_key(self) -> str | None:
        """The scraper key: the setting, else the development key of a running ``up``."""
        return _key(self.ingest_api_key, DEV_API_KEY_FILE)

    def admin_key(self) -> str | None:
        """The rollout admin key: the setting, else the development key of a running ``up``."""
        return _key(self.rollout_admin_key, DEV_ADMIN_KEY_FILE)


def _key(configured: SecretStr | None, dev_file: Path) -> str | None:
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    if dev_file.is_file():
        return dev_file.read_text(encoding="utf-8").strip() or None
    return None


def load_client_settings() -> ClientSettings:
    """The client settings, or one line naming each bad variable and exit code 2."""
    from tagstream.cli.common import load_settings_class

    return load_settings_class(ClientSettings)
