"""deploy/dev/ensure-system.sh: installs what is missing when root, else says the command.

Run with a PATH of stubs so nothing is really installed: ``apt-get`` records its
arguments, ``id`` says who we are, and the tools under test are absent from the PATH.
When the tests run as root, the script also runs as a real unprivileged user (``runuser
-u nobody``), and the Debian names it can ask for are checked against apt's own lists.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.data import REPO

SCRIPT = REPO / "deploy" / "dev" / "ensure-system.sh"
COREUTILS = ("bash", "mktemp", "tail", "rm", "cat", "python3")
#: What an unprivileged user's login shell searches on Debian
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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


def command_of(stderr: str) -> tuple[list[str], set[str]]:
    """The one line's command (argv) and the packages its apt-get install names."""
    [line] = stderr.strip().splitlines()
    assert line.startswith("missing system packages; run"), line
    argv = shlex.split(line.partition(": ")[2])
    update, _, install = argv[-1].partition(" && ")
    assert update == "apt-get update", "a bare machine has no package lists yet"
    assert install.startswith("apt-get install -y "), install
    return argv, set(install.split()[3:])


def test_not_root_prints_the_one_command_and_fails(bin_dir: Path, tmp_path: Path) -> None:
    result = run(bin_dir, uid=1000)
    assert result.returncode == 1
    argv, packages = command_of(result.stderr)
    assert argv[:2] == ["su", "-c"]  # no sudo on this PATH, as on a bare Debian
    assert {"openssl", "kubernetes-client", "prometheus"} <= packages
    assert not (tmp_path / "apt.log").exists()


def test_not_root_with_sudo_prints_the_sudo_command(bin_dir: Path, tmp_path: Path) -> None:
    stub(bin_dir, "sudo", f'echo "$@" >> {tmp_path / "sudo.log"}')
    result = run(bin_dir, uid=1000)
    assert result.returncode == 1
    argv, packages = command_of(result.stderr)
    assert argv[:3] == ["sudo", "sh", "-c"]
    assert {"openssl", "kubernetes-client", "prometheus"} <= packages
    assert not (tmp_path / "sudo.log").exists()  # printed, never run


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


def as_nobody(path: str) -> subprocess.CompletedProcess[str]:
    """The script run by the real user ``nobody`` (real ``id``, no stubs) with ``path``."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser to switch to an unprivileged user")
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", "/usr/bin/env", f"PATH={path}", "bash", str(SCRIPT)],
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def bare_path() -> Iterator[str]:
    """A folder nobody can read, holding the shell's basics and ``id``: no kubectl,
    promtool or openssl (a bare machine's PATH, as far as those go)."""
    folder = Path(tempfile.mkdtemp(prefix="tagstream-bare-path-"))
    try:
        folder.chmod(0o755)
        for name in (*COREUTILS, "id", "apt-get"):
            found = shutil.which(name, path=SYSTEM_PATH)  # root's own PATH: not for nobody
            assert found, name
            os.symlink(found, folder / name)
        yield str(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_real_non_root_user_is_told_the_command_and_nothing_is_installed(
    bare_path: str,
) -> None:
    result = as_nobody(bare_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    argv, packages = command_of(result.stderr)
    assert argv[0] in ("sudo", "su")
    assert {"openssl", "kubernetes-client", "prometheus"} <= packages


def test_a_real_non_root_user_on_this_machine_is_told_nothing_or_the_command() -> None:
    """Nothing missing: silent success; else the command, and exit 1 (never an install)."""
    result = as_nobody(SYSTEM_PATH)
    if result.returncode == 0:
        assert (result.stdout, result.stderr) == ("", "")
    else:
        assert result.returncode == 1
        command_of(result.stderr)


def test_every_package_it_can_ask_for_is_a_debian_package() -> None:
    names = set(re.findall(r"missing\+=\(([a-z0-9.+-]+)\)", SCRIPT.read_text(encoding="utf-8")))
    assert {"chromium", "chromium-driver", "prometheus", "postgresql"} <= names
    if shutil.which("apt-cache") is None or not list(Path("/var/lib/apt/lists").glob("*Packages*")):
        pytest.skip("no apt package lists on this machine to check the names against")
    shown = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *sorted(names)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    known = set(re.findall(r"^Package: (\S+)$", shown.stdout, flags=re.MULTILINE))
    assert names <= known, f"not in apt's lists: {sorted(names - known)}"
