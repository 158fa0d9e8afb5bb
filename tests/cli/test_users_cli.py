"""``tagstream users``: the token printed on the last line authenticates as a Bearer token."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from services.review.auth import authenticate_password, authenticate_token
from shared.db.session import make_engine, make_session_factory
from tagstream.cli.main import app


def test_add_prints_a_working_token_and_list_shows_the_account(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'users.db'}"
    env = {"TAGSTREAM_ENVIRONMENT": "test", "TAGSTREAM_DATABASE_URL": url, "COLUMNS": "200"}
    runner = CliRunner()

    added = runner.invoke(
        app,
        ["users", "add", "ann", "--role", "admin", "--password-stdin"],
        env=env,
        input="correct horse\n",
    )
    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[-1]

    engine = make_engine(url)
    try:
        with make_session_factory(engine).begin() as session:
            account = authenticate_token(session, token)
            assert account is not None
            assert (account.name, account.role) == ("ann", "admin")
            assert authenticate_password(session, "ann", "correct horse") == account
            assert authenticate_password(session, "ann", "wrong horse!") is None
    finally:
        engine.dispose()

    again = runner.invoke(app, ["users", "add", "ann"], env=env)
    assert again.exit_code == 1
    listed = runner.invoke(app, ["users", "list"], env=env)
    assert listed.exit_code == 0
    assert listed.stdout.split()[:2] == ["ann", "admin"]
    assert token not in listed.stdout
