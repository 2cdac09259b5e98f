"""The console in a real browser: Debian's Chromium, driven by Selenium through Debian's
chromedriver, against the console served by uvicorn. Screenshots of each page at desktop
and phone width are left in the test's folder."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from storage.seeds.sync import ensure_imported
from storage.settings import Settings
from storage.stores import Stores
from tests.services import require
from tests.web.conftest import PASSWORD
from workers.web.app import create_web_app

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(settings: Settings, newer_bundle: str) -> Iterator[str]:
    settings = settings.with_(web_password=PASSWORD)
    stores = Stores(settings)
    stores.initialize()
    ensure_imported(stores.database)
    stores.close()
    port = free_port()
    app = create_web_app(settings, seeds_package=newer_bundle)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser() -> Iterator[Any]:
    require("Chromium", bool(CHROMIUM and CHROMEDRIVER), "apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_window_size(*SIZES["desktop"])
    yield driver
    driver.quit()


def test_a_coach_manages_the_catalog_in_a_browser(
    served: str, browser: Any, tmp_path: Path
) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    def shoot(name: str) -> None:
        for size, (width, height) in SIZES.items():
            browser.set_window_size(width, height)
            browser.save_screenshot(str(tmp_path / f"{name}-{size}.png"))
        browser.set_window_size(*SIZES["desktop"])

    def text() -> str:
        return str(browser.find_element(By.TAG_NAME, "main").text)

    def follow(by: str, target: str) -> None:
        """Click and wait for a new document: the old window carries a marker the new one
        lacks. Polling an old element instead (staleness_of) can meet Chromium tearing the
        page down, which chromedriver reports as an unknown error, not a stale element."""
        browser.execute_script("window.trainlogPageBeforeClick = true")
        browser.find_element(by, target).click()
        WebDriverWait(browser, 15, ignored_exceptions=(WebDriverException,)).until(
            lambda driver: driver.execute_script(
                "return window.trainlogPageBeforeClick === undefined"
                " && document.readyState === 'complete'"
            )
        )

    def submit(selector: str) -> None:
        follow(By.CSS_SELECTOR, selector)

    browser.get(f"{served}/datasets")
    assert browser.current_url.endswith("/login")
    shoot("login")
    browser.find_element(By.NAME, "user").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    submit("main form button")
    assert "An update is available" in text()
    shoot("datasets")

    browser.get(f"{served}/datasets/exercise_catalog/entries")
    search = browser.find_element(By.NAME, "q")
    search.send_keys("romanian")
    submit("form.filters button")
    assert "Romanian Deadlift" in text() and "Back Squat" not in text()
    shoot("entries")

    follow(By.LINK_TEXT, "Romanian Deadlift")
    equipment = browser.find_element(By.NAME, "equipment")
    equipment.clear()
    equipment.send_keys("trap bar")
    browser.find_element(By.NAME, "reason").send_keys("our gym has no barbell")
    submit("form.edit button")
    assert "saved" in text() and "our gym has no barbell" in text()
    assert "user, version 2" in browser.find_element(By.TAG_NAME, "h1").text
    shoot("entry")

    submit("form.inline button")  # restore the factory value
    assert "restored to its factory value" in text()
    assert browser.find_element(By.NAME, "equipment").get_attribute("value") == "barbell"

    browser.get(f"{served}/datasets/exercise_catalog/update")
    assert "trap-bar-jump" in text() and "safety bar" in text()
    shoot("update")
    submit("main form button")
    assert "bundled update applied" in text() and "An update is available" not in text()

    bad = tmp_path / "broken.json"
    bad.write_text(
        '{"entries": [{"exerciseId": "x", "name": "X", "targetMuscleGroups": ["toes"]}]}'
    )
    browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(bad))
    submit("form.inline button")
    assert "'toes' is not a muscle group" in text() and "Nothing was written" in text()
    shoot("refused-upload")

    browser.get(f"{served}/operations")
    assert "Checks" in text()
    shoot("operations")
    browser.set_window_size(*SIZES["phone"])
    phone_width = browser.execute_script("return document.documentElement.scrollWidth")
    assert phone_width <= SIZES["phone"][0] + 1, "the page scrolls sideways on a phone"
