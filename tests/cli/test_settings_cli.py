"""``tagstream settings show``: effective values, defaults marked, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tagstream.cli.main import app


@pytest.fixture(autouse=True)
def no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def show(*args: str) -> tuple[int, dict[str, str]]:
    result = CliRunner().invoke(app, ["settings", "show", *args])
    lines = [line.split("=", 1) for line in result.output.splitlines() if "=" in line]
    return result.exit_code, dict(lines)


def test_shared_settings_show_what_is_set_and_mark_defaults(
    monkeypatch: pytest.MonkeyPatch, no_dotenv: Path
) -> None:
    monkeypatch.setenv("TAGSTREAM_SEED", "7")
    (no_dotenv / ".env").write_text("TAGSTREAM_MODEL_NAME=from-dotenv\n", encoding="utf-8")
    code, values = show()
    assert code == 0
    assert values["TAGSTREAM_SEED"] == "7"
    assert values["TAGSTREAM_MODEL_NAME"] == "from-dotenv"
    assert values["TAGSTREAM_TOPIC_RAW"] == "content.raw  # default"
    assert "TAGSTREAM_INGEST_PORT" not in values  # a service's own: --service ingest


def test_secrets_and_url_passwords_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGSTREAM_INGEST_API_KEYS", "key-one,key-two")
    monkeypatch.setenv("TAGSTREAM_KAFKA_SASL_PASSWORD", "sasl-secret")
    monkeypatch.setenv("TAGSTREAM_DATABASE_URL", "postgresql+psycopg://app:db-secret@db:5432/x")
    result = CliRunner().invoke(app, ["settings", "show", "--service", "ingest"])
    assert result.exit_code == 0
    for secret in ("key-one", "key-two", "sasl-secret", "db-secret"):
        assert secret not in result.output
    assert "TAGSTREAM_INGEST_API_KEYS=**********,**********\n" in result.output
    assert "TAGSTREAM_DATABASE_URL=postgresql+psycopg://app:**********@db:5432/x\n" in (
        result.output
    )


@pytest.mark.parametrize("service", ["ingest", "classifier", "review", "feedback", "rollout"])
def test_each_service_shows_its_own_and_the_shared_settings(service: str) -> None:
    code, values = show("--service", service)
    assert code == 0
    assert f"TAGSTREAM_{service.upper()}_PORT" in values
    assert "TAGSTREAM_DATABASE_URL" in values


def test_an_invalid_setting_is_one_line_and_exit_code_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGSTREAM_SEED", "seven")
    result = CliRunner().invoke(app, ["settings", "show"])
    assert result.exit_code == 2
    assert "TAGSTREAM_SEED" in result.output
    assert "Traceback" not in result.output
