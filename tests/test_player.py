"""The player page, in a real headless Chromium, opened from the file system like a user would."""

from __future__ import annotations

import shutil
import time

import pytest

from conftest import read_plan

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Chromium and its driver (Debian: apt-get install chromium chromium-driver; CI installs them)",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
        "--autoplay-policy=no-user-gesture-required", "--window-size=390,844",  # a phone's screen
    ):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, two_steps_mp3):
    browser.get(two_steps_mp3.with_suffix(".html").as_uri())
    wait_for(lambda: browser.execute_script("return document.getElementById('audio').readyState") >= 1)
    return browser


def wait_for(condition, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def shown(browser, element_id: str) -> str:
    return browser.execute_script(f"return document.getElementById('{element_id}').textContent")


def current_time(browser) -> float:
    return browser.execute_script("return document.getElementById('audio').currentTime")


def test_page_loads_the_track_beside_it_and_shows_the_first_step(page, two_steps_mp3):
    plan = read_plan(two_steps_mp3)
    assert page.title == "Two quick steps"
    duration = page.execute_script("return document.getElementById('audio').duration")
    assert duration == pytest.approx(plan["length"], abs=0.05)
    assert shown(page, "step-name") == "Introduction"
    assert shown(page, "next") == "Next: Warm the hands"
    assert page.execute_script("return document.querySelector('header img').naturalWidth") == 600  # the cover decodes
    assert page.execute_script("return document.getElementById('problem').hidden")


def test_play_pause_and_the_shown_step_follows_the_audio(page, two_steps_mp3):
    from selenium.webdriver.common.by import By

    chapters = read_plan(two_steps_mp3)["chapters"]
    page.find_element(By.ID, "play").click()
    wait_for(lambda: current_time(page) > 0.3)
    assert page.execute_script("return document.getElementById('play').getAttribute('aria-label')") == "Pause"
    page.execute_script(f"document.getElementById('audio').currentTime = {chapters[2]['start'] + 0.5}")
    wait_for(lambda: shown(page, "step-name") == "Rest the palms")
    assert shown(page, "step-text") == "Place both palms on the upper back.Let them rest there."
    assert shown(page, "next") == "Next: Closing"
    assert shown(page, "position") == "3 of 4"
    page.find_element(By.ID, "play").click()
    wait_for(lambda: page.execute_script("return document.getElementById('audio').paused"))


def test_tapping_a_step_or_its_mark_jumps_there(page, two_steps_mp3):
    from selenium.webdriver.common.by import By

    chapters = read_plan(two_steps_mp3)["chapters"]
    page.find_element(By.CSS_SELECTOR, "#steps button[data-index='3']").click()
    assert current_time(page) == pytest.approx(chapters[3]["start"], abs=0.01)
    wait_for(lambda: shown(page, "step-name") == "Closing")
    current = page.execute_script("return document.querySelector('#steps [aria-current]').dataset.index")
    assert current == "3"
    page.find_element(By.CSS_SELECTOR, ".mark[data-index='1']").click()
    assert current_time(page) == pytest.approx(chapters[1]["start"], abs=0.01)
    wait_for(lambda: shown(page, "step-name") == "Warm the hands")


def test_page_fits_a_phone_screen_with_large_touch_targets(page):
    width = page.execute_script("return window.innerWidth")
    assert page.execute_script("return document.documentElement.scrollWidth") <= width
    sizes = page.execute_script(
        "return [...document.querySelectorAll('#play, #previous, #following, #steps button, .mark')]"
        ".map(e => [e.getBoundingClientRect().width, e.getBoundingClientRect().height])"
    )
    assert all(w >= 28 and h >= 44 for w, h in sizes), sizes
