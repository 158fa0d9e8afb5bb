"""The README and docs/ point at things that exist, and at nothing outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tagstream.docs.cli import render_cli
from tests.fixtures.data import REPO

PAGES = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_image_exists(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if not target.startswith(("http://", "https://", "mailto:")):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_the_readme_stays_inside_the_repository() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "../shared/SPEC.md" not in text
    assert "docs/design.md" in text


def test_every_command_the_readme_shows_exists() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#+ `(tagstream[^`]*)`", render_cli(), flags=re.MULTILINE))
    shown = re.findall(r"(?:\.venv/bin/|`)tagstream ((?:[a-z]+ ?){1,2})", text)
    commands = {f"tagstream {' '.join(words.split()[:2])}" for words in shown}
    for command in commands:
        assert command in documented or command.rsplit(" ", 1)[0] in documented, command
    assert {"tagstream items send", "tagstream topics tail", "tagstream users add"} <= commands


def test_the_readme_pictures_are_the_ones_the_screenshot_tests_take() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    # test_screenshots.py takes most of them; the flywheel report's is taken by the demo's
    # flow test, the only test that runs the demo to its report.
    tests = "".join(
        (REPO / "tests" / path).read_text(encoding="utf-8")
        for path in ("docs/test_screenshots.py", "flows/test_demo_flow.py")
    )
    pictures = re.findall(r"!\[[^\]]*\]\(docs/images/([^)]+)\)", text)
    assert pictures
    for picture in pictures:
        assert f'"{picture}"' in tests, f"{picture} is not taken by a test"
        # committed: the tests rewrite them only under make screenshots
        path = REPO / "docs" / "images" / picture
        assert path.is_file(), f"docs/images/{picture} is missing: run make screenshots"
        assert path.read_bytes().startswith(b"\x89PNG"), f"docs/images/{picture} is no PNG"
