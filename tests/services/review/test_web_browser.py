"""The review page in real headless Chromium against the real pipeline.

The review service runs as a process on the test's broker topics; review requests are
produced to review.requests, a reviewer logs in through the form and works with the
keyboard alone (number keys, ``u``), and the labels are read back from feedback.labels.
Chromium and chromedriver come from Debian (packages ``chromium``, ``chromium-driver``):
a missing browser fails the test, it is never skipped.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from services.review.auth import create_account
from shared.db.session import make_engine, make_session_factory
from shared.kafka import create_producer
from shared.messages import FeedbackLabel, ReviewRequest
from shared.settings import DEFAULT_TAGS, Settings
from tests.fixtures.db import migrated
from tests.fixtures.kafka import read_topic
from tests.fixtures.services import ServiceProcess, port, running, service_env

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
PASSWORD = "keyboard only please"
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1366,768",
)
ITEMS = {
    "web-1": ("Segment Anything for microscopy images", "computer-vision"),
    "web-2": ("Feature store for streaming ML pipelines", "mlops"),
    "web-3": ("Tokenizer-free language model in 50 lines", "natural-language-processing"),
    "web-4": ("A curated list of ML conference deadlines", "other"),
    "web-5": ("Drift detection for tabular models", "mlops"),
}

REPORTED = "web-5"


def review_request(item_id: str, index: int) -> ReviewRequest:
    title, _ = ITEMS[item_id]
    now = datetime.now(UTC)
    guess = ("computer-vision", "mlops", "natural-language-processing", "other")[index % 4]
    probabilities = {tag: 0.1 for tag in DEFAULT_TAGS}
    probabilities[guess] = 0.45 + index / 100
    probabilities["other"] = max(probabilities["other"], 0.2)
    report: dict[str, object] = {"reason": "low_confidence"}
    if item_id == REPORTED:  # an end user's report: claimed first, the suggestion shown
        report = {
            "schema_version": 2,
            "reason": "user_report",
            "suggested_tag": ITEMS[item_id][1],
            "comment": "This is about monitoring models in production.",
            "report_count": 1,
        }
    return ReviewRequest(
        **report,
        item_id=item_id,
        title=title,
        description=f"{title}. A short write-up with code, a demo and a benchmark table.",
        url=f"https://example.com/projects/{item_id}",
        predicted_tag=guess,
        confidence=probabilities[guess],
        probabilities=probabilities,
        model_version="v1-test",
        received_at=now,
        requested_at=now,
    )


def require_chromium() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.fail(
            f"headless Chromium is needed for the review page test, missing: {missing}. "
            "Install Debian's browser: apt-get install chromium chromium-driver "
            '(CI installs it), or deselect with -m "not browser".',
            pytrace=False,
        )


@pytest.fixture
def chrome() -> Iterator[object]:
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="tagstream-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def create_reviewer(settings: Settings) -> None:
    migrated(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine, immediate=True).begin() as session:
            create_account(session, "rita", "reviewer", datetime.now(UTC), password=PASSWORD)
    finally:
        engine.dispose()


async def produce_requests(settings: Settings) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        for index, item_id in enumerate(ITEMS):
            message = review_request(item_id, index)
            await producer.send_and_wait(
                settings.topic_review,
                message.model_dump_json().encode(),
                key=item_id.encode(),
            )
    finally:
        await producer.stop()


def wait_until(condition: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def latest_labels(settings: Settings, expected: dict[str, str]) -> dict[str, str]:
    """The latest reviewer label per item on feedback.labels, once it matches ``expected``
    (an undone label may have been relayed before the undo; the relabel comes later)."""
    latest: dict[str, FeedbackLabel] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        values = await read_topic(settings, settings.topic_feedback, expect=len(expected))
        latest = {}
        for value in values:
            label = FeedbackLabel.model_validate_json(value)
            current = latest.get(label.item_id)
            if current is None or label.labeled_at >= current.labeled_at:
                latest[label.item_id] = label
        if {item: label.tag for item, label in latest.items()} == expected:
            break
        await asyncio.sleep(0.5)
    return {item: label.tag for item, label in latest.items()}


async def test_reviewer_labels_with_the_keyboard_alone(
    topics: Settings, chrome: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    driver = chrome
    assert isinstance(driver, WebDriver)
    settings = topics
    create_reviewer(settings)
    await produce_requests(settings)
    review_port = port()
    env = service_env(settings, TAGSTREAM_REVIEW_PORT=review_port)
    service = ServiceProcess("review", env, int(review_port), tmp_path)
    tags = list(DEFAULT_TAGS)

    with running(service.start(ready_path="/readyz")):
        # Wait for the consumer to store all five requests.
        def queued() -> bool:
            token_free = httpx.get(service.url + "/metrics", timeout=2).text
            return "tagstream_review_queue_depth 5.0" in token_free

        wait_until(queued, "five items in the review queue", timeout=30)

        driver.get(service.url + "/review")
        assert "/login" in driver.current_url
        driver.find_element(By.ID, "name").send_keys("rita")
        driver.find_element(By.ID, "password").send_keys(PASSWORD + "\n")
        wait_until(lambda: driver.current_url.endswith("/review"), "the review page")

        def current_item() -> str:
            return str(
                driver.find_element(By.CSS_SELECTOR, "article.item").get_attribute("data-item-id")
            )

        def press(key: str) -> None:
            driver.find_element(By.TAG_NAME, "body").send_keys(key)

        def flash() -> str:
            found = driver.find_elements(By.CSS_SELECTOR, ".flash")
            return found[0].text if found else ""

        # The reported item comes first, with what the end user said on the page.
        assert current_item() == REPORTED
        report = driver.find_element(By.CSS_SELECTOR, "aside.report-box").text
        assert "1 end user reported this item, suggesting mlops." in report
        assert "monitoring models in production" in report
        suggested = driver.find_element(By.CSS_SELECTOR, "button.tag.suggested")
        assert suggested.get_attribute("value") == ITEMS[REPORTED][1]
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "review-page-report.png"))

        expected: dict[str, str] = {}
        for _ in range(3):
            item = current_item()
            tag = ITEMS[item][1]
            press(str(tags.index(tag) + 1))
            wait_until(
                lambda item=item: flash().startswith("Labeled") and current_item() != item,
                f"the label of {item}",
            )
            assert f"as {tag}" in flash()
            expected[item] = tag
        last = item

        press("u")
        wait_until(lambda: flash().startswith("Undid"), "the undo")
        assert current_item() == last
        # Relabel the undone item with a different tag.
        relabel = "other" if expected[last] != "other" else "mlops"
        press(str(tags.index(relabel) + 1))
        wait_until(lambda: flash().startswith("Labeled") and current_item() != last, "relabel")
        expected[last] = relabel
        progress = driver.find_element(By.ID, "progress").text
        assert progress.startswith("3 labeled today")

        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "review-page.png"))

        assert await latest_labels(settings, expected) == expected
