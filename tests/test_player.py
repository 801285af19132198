"""The player page in a real headless Chromium emulating a phone: opened from a file, and through `voiceguide serve`."""

from __future__ import annotations

import shutil
import urllib.parse
import urllib.request

import pytest
from conftest import FIXTURES, needs_chromium, read_plan, run_cli, serving, wait_for

pytestmark = needs_chromium
AUTHOR = "Ana Reyes"

# Recorders for what the page tells the lock screen, and a wake lock the test can watch (headless
# Chromium refuses the real one), installed before the page's own script runs.
WATCH_PAGE = """
window.watched = {actions: {}, positions: [], wakeLocks: 0};
const session = navigator.mediaSession;
const setAction = session.setActionHandler.bind(session), setPosition = session.setPositionState.bind(session);
session.setActionHandler = (action, handler) => {
  window.watched.actions[action] = handler;
  setAction(action, handler);
};
session.setPositionState = (state) => { window.watched.positions.push(state); setPosition(state); };
class Sentinel extends EventTarget {
  release() { this.dispatchEvent(new Event("release")); return Promise.resolve(); }
}
Object.defineProperty(navigator, "wakeLock", {configurable: true, value: {
  request: (type) => { window.watched.wakeLocks += 1; return Promise.resolve(window.watched.lock = new Sentinel()); },
}});
Object.defineProperty(document, "visibilityState", {
  configurable: true, get: () => window.watched.visibility || "visible",
});
"""


@pytest.fixture(scope="module")
def authored(tmp_path_factory, two_steps_mp3):
    """The two-step routine with an author, built once for this module (with the clips of the shared build's cache)."""
    folder = tmp_path_factory.mktemp("authored")
    if (two_steps_mp3.parent / "cache").is_dir():
        shutil.copytree(two_steps_mp3.parent / "cache", folder / "build" / "cache")
    routine = folder / "two-steps.yaml"
    text = (FIXTURES / "two-steps.yaml").read_text(encoding="utf-8")
    routine.write_text(f"author: {AUTHOR}\n{text}", encoding="utf-8")
    result = run_cli("build", routine, "-o", folder / "build")
    assert result.exit_code == 0, result.stderr
    return folder / "build" / "two-steps.mp3"


@pytest.fixture(scope="module")
def server(authored):
    with serving(authored.parent) as running:
        yield running


@pytest.fixture(scope="module")
def watched_browser(browser):
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_PAGE})
    return browser


def open_page(browser, url: str):
    """The page afresh: nothing stored from earlier visits to resume."""
    browser.get("about:blank")  # the page stores its position as it goes: leave it first
    scheme, host = urllib.parse.urlsplit(url)[:2]
    clear = {"origin": f"{scheme}://{host}", "storageTypes": "local_storage"}
    browser.execute_cdp_cmd("Storage.clearDataForOrigin", clear)
    browser.get(url)
    wait_for(lambda: browser.execute_script("return document.getElementById('audio').readyState") >= 1)
    return browser


@pytest.fixture
def page(browser, two_steps_mp3):
    """The page opened from the file system."""
    return open_page(browser, two_steps_mp3.with_suffix(".html").as_uri())


@pytest.fixture
def served(watched_browser, server):
    """The page through the server, as a phone opens it."""
    return open_page(watched_browser, f"{server.url}two-steps.html")


def shown(browser, element_id: str) -> str:
    return browser.execute_script(f"return document.getElementById('{element_id}').textContent")


def current_time(browser) -> float:
    return browser.execute_script("return document.getElementById('audio').currentTime")


def paused(browser) -> bool:
    return browser.execute_script("return document.getElementById('audio').paused")


def set_time(browser, seconds: float) -> None:
    browser.execute_script(f"document.getElementById('audio').currentTime = {seconds}")
    wait_for(lambda: not browser.execute_script("return document.getElementById('audio').seeking"))


def click(browser, selector: str) -> None:
    """Tap it as a user would: scrolled clear of the controls that stay at the bottom of the screen."""
    from selenium.webdriver.common.by import By

    element = browser.find_element(By.CSS_SELECTOR, selector)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


# ---------------------------------------------------------------- from a file


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
    chapters = read_plan(two_steps_mp3)["chapters"]
    click(page, "#play")
    wait_for(lambda: current_time(page) > 0.3)
    assert page.execute_script("return document.getElementById('play').getAttribute('aria-label')") == "Pause"
    set_time(page, chapters[2]["start"] + 0.5)
    wait_for(lambda: shown(page, "step-name") == "Rest the palms")
    assert shown(page, "step-text") == "Place both palms on the upper back.Let them rest there."
    assert shown(page, "next") == "Next: Closing"
    assert shown(page, "position") == "3 of 4"
    click(page, "#play")
    wait_for(lambda: paused(page))


def test_tapping_a_step_or_its_mark_jumps_there(page, two_steps_mp3):
    chapters = read_plan(two_steps_mp3)["chapters"]
    click(page, "#steps button[data-index='3']")
    assert current_time(page) == pytest.approx(chapters[3]["start"], abs=0.01)
    wait_for(lambda: shown(page, "step-name") == "Closing")
    current = page.execute_script("return document.querySelector('#steps [aria-current]').dataset.index")
    assert current == "3"
    click(page, ".mark[data-index='1']")
    assert current_time(page) == pytest.approx(chapters[1]["start"], abs=0.01)
    wait_for(lambda: shown(page, "step-name") == "Warm the hands")


def test_page_fits_a_phone_screen_with_large_touch_targets(page):
    assert page.execute_script("return [window.innerWidth, window.innerHeight]") == [390, 844]
    assert page.execute_script("return document.documentElement.scrollWidth") <= 390
    sizes = page.execute_script(
        "return [...document.querySelectorAll('#play, #previous, #following, #steps button, .mark, .switch')]"
        ".map(e => [e.getBoundingClientRect().width, e.getBoundingClientRect().height])"
    )
    assert all(w >= 28 and h >= 44 for w, h in sizes), sizes


# ---------------------------------------------------------------- through the server, on a phone


def test_served_page_plays_its_mp3_fetched_in_ranges(served, server, authored):
    click(served, "#play")
    wait_for(lambda: current_time(served) > 0.3)
    set_time(served, read_plan(authored)["length"] - 1.0)  # far ahead: the browser asks for that part
    statuses = served.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.endsWith('/two-steps.mp3')).map(e => e.responseStatus)"
    )
    assert statuses and set(statuses) == {206}, statuses
    click(served, "#play")
    wait_for(lambda: paused(served))


def test_play_button_stays_on_screen_however_long_the_step(served):
    def play_button_on_screen() -> bool:
        return served.execute_script(
            "const box = document.getElementById('play').getBoundingClientRect();"
            "return box.top >= 0 && box.bottom <= window.innerHeight && box.left >= 0 && box.right <= window.innerWidth"
        )

    assert play_button_on_screen()
    served.execute_script(
        "const text = document.getElementById('step-text');"
        "for (let i = 0; i < 40; i++)"
        "  text.append(Object.assign(document.createElement('p'), {textContent: 'A long line.'}))"
    )
    assert served.execute_script("return document.documentElement.scrollHeight") > 844 * 2
    assert play_button_on_screen()
    served.execute_script("window.scrollTo(0, document.documentElement.scrollHeight)")
    assert play_button_on_screen()


def test_seek_by_chapter_from_the_list_and_with_the_slider_keys(served, authored):
    from selenium.webdriver.common.keys import Keys

    chapters = read_plan(authored)["chapters"]
    length = read_plan(authored)["length"]
    click(served, "#steps button[data-index='2']")
    assert current_time(served) == pytest.approx(chapters[2]["start"], abs=0.01)
    wait_for(lambda: shown(served, "step-name") == "Rest the palms")
    bar = served.find_element("id", "bar")
    start = f"{int(chapters[2]['start']) // 60}:{int(chapters[2]['start']) % 60:02d}"
    assert bar.get_attribute("aria-valuetext") == f"{start} of 0:{int(length):02d}, Rest the palms"
    bar.send_keys(Keys.PAGE_DOWN)
    assert current_time(served) == pytest.approx(chapters[3]["start"], abs=0.01)
    bar.send_keys(Keys.HOME)
    assert current_time(served) == 0
    assert bar.get_attribute("aria-valuetext") == f"0:00 of 0:{int(length):02d}, Introduction"
    bar.send_keys(Keys.END)
    assert current_time(served) == pytest.approx(length, abs=0.05)
    assert bar.get_attribute("role") == "slider" and bar.get_attribute("aria-valuemax") == str(round(length))


def test_resume_where_it_stopped_after_a_reload_or_a_closed_tab(served, server, authored):
    chapters = read_plan(authored)["chapters"]
    position = chapters[2]["start"] + 1.5
    click(served, "#play")
    wait_for(lambda: current_time(served) > 0.2)
    set_time(served, position)
    click(served, "#play")
    wait_for(lambda: paused(served))
    stopped = current_time(served)
    served.refresh()
    wait_for(lambda: current_time(served) == pytest.approx(stopped, abs=0.01))
    assert shown(served, "step-name") == "Rest the palms"
    assert shown(served, "resumed-at") == f"Resumed at 0:{int(stopped):02d}."
    served.switch_to.new_window("tab")  # as if the tab had been closed and the page opened again
    served.get(f"{server.url}two-steps.html")
    wait_for(lambda: current_time(served) == pytest.approx(stopped, abs=0.01))
    served.close()
    served.switch_to.window(served.window_handles[0])
    click(served, "#restart")
    assert current_time(served) == 0


def test_lock_screen_shows_the_step_and_the_author_and_can_seek(served, authored):
    plan = read_plan(authored)
    metadata = served.execute_script(
        "const m = navigator.mediaSession.metadata; return [m.title, m.artist, m.album, m.artwork.length]"
    )
    assert metadata == ["Introduction", AUTHOR, "Two quick steps", 1]
    actions = served.execute_script("return Object.keys(window.watched.actions)")
    assert {"play", "pause", "previoustrack", "nexttrack", "seekto", "seekbackward", "seekforward"} <= set(actions)
    target = plan["chapters"][2]["start"] + 0.25
    served.execute_script(f"window.watched.actions.seekto({{seekTime: {target}}})")
    assert current_time(served) == pytest.approx(target, abs=0.01)
    wait_for(lambda: served.execute_script("return navigator.mediaSession.metadata.title") == "Rest the palms")
    state = served.execute_script("return window.watched.positions.at(-1)")
    assert state["position"] == pytest.approx(target, abs=0.05)
    assert state["duration"] == pytest.approx(plan["length"], abs=0.05)
    served.execute_script("window.watched.actions.nexttrack({})")
    assert current_time(served) == pytest.approx(plan["chapters"][3]["start"], abs=0.01)


def test_wake_lock_is_asked_again_when_the_page_is_shown_again(served):
    click(served, "#play")
    wait_for(lambda: served.execute_script("return window.watched.wakeLocks") == 1)
    served.execute_script(  # the phone locks: the browser releases the lock and hides the page
        "window.watched.lock.release(); window.watched.visibility = 'hidden';"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    assert served.execute_script("return window.watched.wakeLocks") == 1
    served.execute_script(
        "window.watched.visibility = 'visible'; document.dispatchEvent(new Event('visibilitychange'))"
    )
    wait_for(lambda: served.execute_script("return window.watched.wakeLocks") == 2)
    click(served, "#play")
    wait_for(lambda: paused(served))


def test_pause_after_each_step_stops_at_the_next_steps_start(served, authored):
    chapters = read_plan(authored)["chapters"]
    click(served, "#step-pause")
    assert served.execute_script("return document.getElementById('step-pause').getAttribute('role')") == "switch"
    set_time(served, chapters[2]["start"] - 0.6)
    click(served, "#play")
    wait_for(lambda: paused(served), 5)
    assert current_time(served) == pytest.approx(chapters[2]["start"], abs=0.06)
    assert shown(served, "step-name") == "Rest the palms"
    click(served, "#play")  # and on into the step
    wait_for(lambda: current_time(served) > chapters[2]["start"] + 0.3)
    click(served, "#play")
    served.refresh()  # the switch is remembered
    wait_for(lambda: served.execute_script("return document.getElementById('step-pause').checked"))


def test_captions_are_a_text_track_of_every_spoken_line(served, authored):
    speech = [event for event in read_plan(authored)["events"] if event["kind"] == "speech"]
    wait_for(lambda: served.execute_script("return document.getElementById('audio').textTracks[0].cues?.length"))
    track = served.execute_script(
        "const t = document.getElementById('audio').textTracks[0];"
        "return [t.kind, t.language, [...t.cues].map(c => [c.text, c.startTime, c.endTime])]"
    )
    assert track[:2] == ["captions", "en"]
    assert [text for text, _, _ in track[2]] == [event["text"] for event in speech]
    for (_, start, end), event in zip(track[2], speech, strict=True):
        assert (start, end) == (pytest.approx(event["start"], abs=0.001), pytest.approx(event["end"], abs=0.001))
    said = speech[3]  # the second line of "Rest the palms"
    set_time(served, (said["start"] + said["end"]) / 2)
    highlighted = "return document.querySelector('#step-text p.said')?.textContent"
    wait_for(lambda: served.execute_script(highlighted) == said["text"])


def test_download_link_gives_the_mp3(served, server, authored):
    link = served.execute_script(
        "const a = document.getElementById('download'); return [a.href, a.hasAttribute('download'), a.textContent]"
    )
    assert link == [f"{server.url}two-steps.mp3", True, "Download the MP3"]
    with urllib.request.urlopen(link[0]) as response:
        assert response.headers["Content-Type"] == "audio/mpeg"
        assert response.read() == authored.read_bytes()

