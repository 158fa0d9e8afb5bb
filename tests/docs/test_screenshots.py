"""The README's pictures, taken by headless Chromium from the real thing so they stay true.

Each test takes its PNG and checks it (size, not blank, the page's elements there): the
review page as a reviewer sees it after logging in, with the queue the browser test
builds; the evaluation report of a model trained on the real dataset. By default the
pictures go to the test's temporary folder; ``make screenshots``
(``TAGSTREAM_UPDATE_SCREENSHOTS=1``) writes them into ``docs/images/``: run it after
changing either page, and commit the pictures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.db.session import make_engine
from shared.ml import training
from shared.registry import ModelRegistry
from shared.settings import Settings
from tests.fixtures.data import REPO
from tests.fixtures.screenshots import check_picture, screenshot_path
from tests.fixtures.services import ServiceProcess, port, running, service_env
from tests.services.review.test_web_browser import (
    PASSWORD,
    REPORTED,
    create_reviewer,
    produce_requests,
    wait_until,
)
from tests.services.review.test_web_browser import chrome as browser_session

pytestmark = [pytest.mark.browser]
WIDTH = 1280


@pytest.fixture
def chrome() -> Iterator[object]:
    yield from browser_session.__wrapped__()


def save(
    driver: object,
    name: str,
    scratch: Path,
    *,
    min_height: int,
    width: int = WIDTH,
    full_page: bool = False,
) -> Path:
    """Take ``name`` (see tests/fixtures/screenshots.py for where it goes) and check it."""
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(driver, WebDriver)
    driver.set_window_size(width, 800)
    if full_page:  # measured at the final width; CDP, since a window cannot outgrow its screen
        document = driver.execute_script("return document.documentElement.scrollHeight")
        metrics = {"width": width, "height": int(document), "deviceScaleFactor": 1}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "mobile": False})
    path = screenshot_path(name, scratch)
    assert driver.save_screenshot(str(path))
    check_picture(path, width=width, min_height=min_height)
    return path


@pytest.mark.kafka
async def test_review_page_screenshot(topics: Settings, chrome: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = chrome
    create_reviewer(topics)
    await produce_requests(topics)
    review_port = port()
    env = service_env(topics, TAGSTREAM_REVIEW_PORT=review_port)
    service = ServiceProcess("review", env, int(review_port), tmp_path)
    with running(service.start(ready_path="/readyz")):
        driver.get(service.url + "/review")
        driver.find_element(By.ID, "name").send_keys("rita")
        driver.find_element(By.ID, "password").send_keys(PASSWORD + "\n")

        def item_shown() -> bool:
            found = driver.find_elements(By.CSS_SELECTOR, "article.item")
            return bool(found) and found[0].get_attribute("data-item-id") == REPORTED

        wait_until(item_shown, "the reported item on the review page", timeout=30)
        save(driver, "review-page.png", tmp_path / "pictures", min_height=400)


@pytest.mark.slow
def test_evaluation_report_screenshot(
    dataset_path: Path, chrome: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.webdriver.common.by import By

    from tests.fixtures.db import migrated

    monkeypatch.chdir(REPO)  # the report names its data by a path relative to the repository
    data = os.path.relpath(dataset_path, REPO)
    settings = Settings(
        environment="test",
        registry_dir=tmp_path / "registry",
        database_url=migrated(f"sqlite:///{tmp_path / 'registry.db'}"),
    )
    version = training.train(settings, data_location=data).version.version
    engine = make_engine(settings.database_url)
    try:
        registry = ModelRegistry(engine, settings.registry_dir, settings.model_name)
        report = registry.artifact_path(version, "report.html")
    finally:
        engine.dispose()
    driver = chrome
    driver.get(report.resolve().as_uri())
    assert driver.title == "Evaluation on the test split"
    assert driver.find_elements(By.TAG_NAME, "table"), "the report shows no table"
    save(
        driver,
        "evaluation-report.png",
        tmp_path / "pictures",
        width=1100,
        min_height=1500,
        full_page=True,
    )
