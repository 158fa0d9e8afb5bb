"""deploy/dev/ensure-system.sh: installs what is missing when root, else says the command.

Run with a PATH of stubs so nothing is really installed: ``apt-get`` records its
arguments, ``id`` says who we are, and the tools under test are absent from the PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.data import REPO

SCRIPT = REPO / "deploy" / "dev" / "ensure-system.sh"
COREUTILS = ("bash", "mktemp", "tail", "rm", "cat", "python3")


def stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/bash\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH with the shell's basics and no kubectl, promtool or openssl."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in COREUTILS:
        found = shutil.which(name)
        assert found, name
        os.symlink(found, folder / name)
    stub(folder, "apt-get", f'echo "$@" >> {tmp_path / "apt.log"}')
    return folder


def run(bin_dir: Path, uid: int) -> subprocess.CompletedProcess[str]:
    stub(bin_dir, "id", f"echo {uid}")
    return subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT)],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_not_root_prints_the_one_command_and_fails(bin_dir: Path, tmp_path: Path) -> None:
    result = run(bin_dir, uid=1000)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("missing system packages; run: sudo apt-get install -y ")
    assert {"openssl", "kubernetes-client", "prometheus"} <= set(line.split(" -y ")[1].split())
    assert not (tmp_path / "apt.log").exists()


def test_root_installs_only_what_is_missing_quietly(bin_dir: Path, tmp_path: Path) -> None:
    result = run(bin_dir, uid=0)
    assert result.returncode == 0, result.stderr
    update, install = (tmp_path / "apt.log").read_text(encoding="utf-8").splitlines()
    assert update == "update -qq"
    assert install.startswith("install -y -qq ")
    assert {"openssl", "kubernetes-client", "prometheus"} <= set(install.split()[3:])


def test_nothing_missing_means_nothing_done() -> None:
    tools = ("kubectl", "promtool", "openssl")
    if not all(shutil.which(t) for t in tools) or not Path("/usr/bin/chromium").exists():
        pytest.skip("this machine lacks some packages: the other tests cover that case")
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
