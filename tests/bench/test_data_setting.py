"""Every target reads the labeled data by one rule, so `make bench` works on a fresh clone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from shared.settings import PUBLIC_DATASET_URL
from tests.fixtures.data import REPO, data_location

PRINT = "print-data: ; @echo $$TAGSTREAM_DATA_LOCATION"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("TAGSTREAM_DATA_LOCATION", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    return tmp_path


def test_the_setting_wins_over_any_copy(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = clean_env / "copy.csv"
    copy.write_text("id\n", encoding="utf-8")
    monkeypatch.setenv("TAGSTREAM_DATA_LOCATION", "elsewhere.csv")
    assert data_location((copy,)) == "elsewhere.csv"


def test_the_setting_in_dotenv_counts(clean_env: Path) -> None:
    (clean_env / ".env").write_text("TAGSTREAM_DATA_LOCATION=from-dotenv.csv\n", encoding="utf-8")
    assert data_location(()) == "from-dotenv.csv"


def test_unset_falls_back_to_the_first_copy_present(clean_env: Path) -> None:
    local, shared = clean_env / "data.csv", clean_env / "shared.csv"
    shared.write_text("id\n", encoding="utf-8")
    assert data_location((local, shared)) == str(shared)
    local.write_text("id\n", encoding="utf-8")
    assert data_location((local, shared)) == str(local)


def test_no_copy_means_the_public_url(clean_env: Path) -> None:
    assert data_location((clean_env / "absent.csv",)) == PUBLIC_DATASET_URL


def make_print_data(repo: Path) -> str:
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", PRINT, "print-data"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    return result.stdout.strip()


def test_makefile_exports_the_shared_copy_on_a_fresh_clone(tmp_path: Path) -> None:
    repo = tmp_path / "tagstream"
    repo.mkdir()
    shutil.copy(REPO / "Makefile", repo / "Makefile")
    assert make_print_data(repo) == ""  # nothing anywhere: the setting's default applies
    shared = tmp_path / "shared" / "datasets" / "madewithml-dataset.csv"
    shared.parent.mkdir(parents=True)
    shared.write_text("id\n", encoding="utf-8")
    assert make_print_data(repo) == str(shared)
    local = repo / "data" / "madewithml-dataset.csv"
    local.parent.mkdir()
    local.write_text("id\n", encoding="utf-8")
    assert make_print_data(repo) == "data/madewithml-dataset.csv"
