"""``serve()``: a bad setting is one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.http.serve import INVALID_SETTINGS_EXIT_CODE, invalid_settings_message

SERVICES = ("ingest", "classifier", "review", "feedback", "rollout")


class _Example(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TAGSTREAM_")

    example_port: int = Field(1, ge=1)
    secret: str = "change-me"

    @model_validator(mode="after")
    def _no_placeholder(self) -> _Example:
        if self.secret == "change-me":
            raise ValueError("production needs TAGSTREAM_SECRET")
        return self


def test_the_message_names_each_variable_on_one_line() -> None:
    with pytest.raises(ValidationError) as caught:
        _Example(example_port=0)
    message = invalid_settings_message("example", caught.value, "TAGSTREAM_")
    assert message == (
        "example: refusing to start, invalid settings: "
        "TAGSTREAM_EXAMPLE_PORT: Input should be greater than or equal to 1"
    )
    with pytest.raises(ValidationError) as caught:
        _Example()
    assert invalid_settings_message("example", caught.value, "TAGSTREAM_").endswith(
        "invalid settings: production needs TAGSTREAM_SECRET"
    )


def test_every_service_refuses_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGSTREAM_")}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env={**env, f"TAGSTREAM_{name.upper()}_PORT": "not-a-port"},
            cwd=tmp_path,  # no .env file to read
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in SERVICES
    }
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == INVALID_SETTINGS_EXIT_CODE, (name, stderr)
        assert "Traceback" not in stderr + stdout
        assert stderr.splitlines() == [
            f"{name}: refusing to start, invalid settings: TAGSTREAM_{name.upper()}_PORT: "
            "Input should be a valid integer, unable to parse string as an integer"
        ]
