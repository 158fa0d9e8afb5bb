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


def test_lifecycle_commands_disable_remove_reset_rotate_revoke(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'users.db'}"
    env = {"TAGSTREAM_ENVIRONMENT": "test", "TAGSTREAM_DATABASE_URL": url, "COLUMNS": "200"}
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "ann", "--password-stdin"], env=env, input="p" * 9)
    first = added.stdout.strip().splitlines()[-1]
    engine = make_engine(url)
    sessions = make_session_factory(engine)

    def token_works(token: str) -> bool:
        with sessions.begin() as session:
            return authenticate_token(session, token) is not None

    def password_works(password: str) -> bool:
        with sessions.begin() as session:
            return authenticate_password(session, "ann", password) is not None

    try:
        rotated = runner.invoke(app, ["users", "rotate-token", "ann"], env=env)
        assert rotated.exit_code == 0, rotated.output
        second = rotated.stdout.strip().splitlines()[-1]
        assert second != first
        assert (token_works(first), token_works(second)) == (False, True)

        assert runner.invoke(app, ["users", "revoke-token", "ann"], env=env).exit_code == 0
        assert not token_works(second)
        assert "token-revoked" in runner.invoke(app, ["users", "list"], env=env).stdout

        short = runner.invoke(app, ["users", "reset-password", "ann"], env=env, input="short\n")
        assert short.exit_code == 1
        reset = runner.invoke(
            app, ["users", "reset-password", "ann"], env=env, input="new password!\n"
        )
        assert reset.exit_code == 0, reset.output
        assert (password_works("p" * 9), password_works("new password!")) == (False, True)

        assert runner.invoke(app, ["users", "disable", "ann"], env=env).exit_code == 0
        assert not password_works("new password!")
        assert "disabled" in runner.invoke(app, ["users", "list"], env=env).stdout
        assert runner.invoke(app, ["users", "enable", "ann"], env=env).exit_code == 0
        assert password_works("new password!")

        assert runner.invoke(app, ["users", "remove", "ann"], env=env).exit_code == 0
        assert runner.invoke(app, ["users", "list"], env=env).stdout.strip() == ""
        unknown = runner.invoke(app, ["users", "remove", "ann"], env=env)
        assert unknown.exit_code == 1
        assert "no account 'ann'" in unknown.output
    finally:
        engine.dispose()
