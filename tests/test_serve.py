"""`voiceguide serve`: the real server as a user starts it, met by HTTP clients, a feed parser and a phone's browser."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import feedparser
import numpy as np
import pytest
from conftest import FIXTURES, needs_chromium, read_plan, run_cli, serving, wait_for
from mutagen.id3 import ID3, TIT2

from voiceguide.built import find_built
from voiceguide.feed import podcast_feed
from voiceguide.lan import lan_addresses
from voiceguide.urls import Urls

LENGTH = "30s"  # a second build of the routine, fitted to this length


@pytest.fixture(scope="module")
def folder(tmp_path_factory, two_steps_mp3) -> Path:
    """A build folder with the two-step routine at its own length and at 30s, a preview MP3, and the clip cache."""
    folder = tmp_path_factory.mktemp("served") / "build"
    shutil.copytree(two_steps_mp3.parent, folder, ignore=shutil.ignore_patterns("*-preview-*"))
    built = run_cli("build", FIXTURES / "two-steps.yaml", "-o", folder, "--length", LENGTH)
    assert built.exit_code == 0, built.stderr
    shutil.copy(two_steps_mp3, folder / "two-steps-preview-step1.mp3")  # no timeline beside it: not a built track
    (folder / "cache" / "secret.txt").parent.mkdir(exist_ok=True)
    (folder / "cache" / "secret.txt").write_text("not for phones")
    (folder.parent / "outside.md").write_text("outside the folder")
    return folder


@pytest.fixture(scope="module")
def server(folder):
    with serving(folder) as running:
        yield running


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET"):
    """(status, headers, body) of a request, errors included."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def mp3_chapters(path: Path) -> list[tuple[str, float, float]]:
    """The MP3's chapters as mutagen reads them, in the order of its table of contents."""
    tags = ID3(path)
    frames = {frame.element_id: frame for frame in tags.getall("CHAP")}
    (toc,) = tags.getall("CTOC")
    return [
        (str(frames[name].sub_frames["TIT2"]), frames[name].start_time / 1000, frames[name].end_time / 1000)
        for name in toc.child_element_ids
    ]


# ---------------------------------------------------------------- starting, and what it prints


def test_prints_the_address_and_a_qr_code_that_decodes_to_it(server, folder):
    import zxingcpp

    printed = "".join(server.output)
    assert server.output[0] == f"serving 2 tracks of 1 routine from {folder}; Ctrl-C stops\n"
    assert server.url.startswith("http://127.0.0.1:") and f"\n  {server.url}\n" in printed
    assert f"podcast feed: {server.url}feed.xml\n" in printed
    code = [line.rstrip("\n") for line in server.output if line.strip() and set(line.strip()) <= set("█▀▄ ")]
    # Draw it as a terminal shows it, light characters on a dark background, then read it as a phone would.
    top, bottom = {"█": 1, "▀": 1, "▄": 0, " ": 0}, {"█": 1, "▀": 0, "▄": 1, " ": 0}
    width = max(map(len, code))
    rows = [[half[c] for c in line.ljust(width)] for line in code for half in (top, bottom)]
    image = np.kron(np.array(rows, dtype=np.uint8) * 255, np.ones((6, 6), dtype=np.uint8))
    assert [result.text for result in zxingcpp.read_barcodes(image)] == [server.url]


def test_a_busy_port_is_a_one_line_error(folder, cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", folder, "--host", "127.0.0.1", "--port", port)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: cannot serve on port {port}: it is in use (is another server running?); choose another with --port\n"
    )


def test_an_empty_or_missing_folder_is_a_one_line_error(tmp_path, cli):
    (tmp_path / "lonely.mp3").write_bytes(b"an MP3 without its timeline is no built routine")
    result = cli("serve", tmp_path, "--host", "127.0.0.1", "--port", "0")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {tmp_path}: no built routines to serve (a NAME.mp3 with its NAME.json); "
        f"build one first: voiceguide build ROUTINE -o {tmp_path}\n"
    )
    missing = tmp_path / "nothing"
    result = cli("serve", missing)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {missing}: no such folder; build a routine into it first: voiceguide build ROUTINE -o {missing}\n"
    )


def test_lan_addresses_are_read_from_the_interfaces_without_sending_anything(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a socket or a name lookup was used")

    for name in ("socket", "create_connection", "getaddrinfo", "gethostbyname", "gethostbyname_ex"):
        monkeypatch.setattr(socket, name, no_network)
    found = lan_addresses()
    monkeypatch.undo()
    ip = shutil.which("ip")
    if ip:  # what the system says its addresses are (iproute2 reads them from the kernel too)
        command = [ip, "-o", "-4", "addr", "show", "up"]
        listed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        assigned = {line.split()[3].split("/")[0] for line in listed.splitlines()}
        assert set(found) <= assigned
        assert "127.0.0.1" not in found


# ---------------------------------------------------------------- files, as a real HTTP client meets them


def test_range_requests_are_answered_206_with_content_range(server, folder):
    mp3 = (folder / "two-steps.mp3").read_bytes()
    status, headers, body = fetch(f"{server.url}two-steps.mp3", {"Range": "bytes=1000-1999"})
    assert (status, headers["Content-Type"]) == (206, "audio/mpeg")
    assert headers["Content-Range"] == f"bytes 1000-1999/{len(mp3)}"
    assert body == mp3[1000:2000]
    status, headers, body = fetch(f"{server.url}two-steps.mp3", {"Range": "bytes=-500"})  # the last 500 bytes
    assert (status, body) == (206, mp3[-500:])
    status, headers, body = fetch(f"{server.url}two-steps.mp3", {"Range": f"bytes={len(mp3) - 10}-"})
    assert (status, body) == (206, mp3[-10:])
    assert headers["Content-Range"] == f"bytes {len(mp3) - 10}-{len(mp3) - 1}/{len(mp3)}"
    status, headers, _ = fetch(f"{server.url}two-steps.mp3", {"Range": f"bytes={len(mp3) + 5}-"})
    assert (status, headers["Content-Range"]) == (416, f"bytes */{len(mp3)}")
    status, headers, body = fetch(f"{server.url}two-steps.mp3")
    assert (status, headers["Accept-Ranges"], body) == (200, "bytes", mp3)


def test_range_request_with_curl(server, folder):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    done = subprocess.run(
        [curl, "-s", "-D", "-", "-o", "-", "-r", "0-99", f"{server.url}two-steps.mp3"], capture_output=True, check=True
    )
    head, body = done.stdout.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 206 Partial Content\r\n")
    assert body == (folder / "two-steps.mp3").read_bytes()[:100]


def test_content_types_and_validators(server, folder):
    types = {
        "two-steps.mp3": "audio/mpeg", "two-steps.html": "text/html; charset=utf-8",
        "two-steps.vtt": "text/vtt; charset=utf-8", "two-steps.json": "application/json",
        "two-steps.md": "text/markdown; charset=utf-8", "two-steps-30s.mp3": "audio/mpeg",
        "": "text/html; charset=utf-8", "feed.xml": "application/rss+xml; charset=utf-8",
        "chapters/two-steps.json": "application/json+chapters", "covers/two-steps.png": "image/png",
    }  # fmt: skip
    for name, content_type in types.items():
        status, headers, body = fetch(server.url + name)
        assert (status, headers["Content-Type"]) == (200, content_type), name
        assert headers["X-Content-Type-Options"] == "nosniff"
        etag = headers["ETag"]
        assert fetch(server.url + name, {"If-None-Match": etag})[0] == 304, name
        if name.endswith((".mp3", ".html", ".vtt", ".json", ".md")) and not name.startswith("chapters"):
            assert body == (folder / name).read_bytes()
            assert fetch(server.url + name, {"If-Modified-Since": headers["Last-Modified"]})[0] == 304, name


def test_many_clients_at_once_each_get_their_bytes(server, folder):
    mp3 = (folder / "two-steps.mp3").read_bytes()
    ranges = [(start, start + 9_999) for start in range(0, len(mp3) - 10_000, len(mp3) // 16)]

    def get(span):
        status, _, body = fetch(f"{server.url}two-steps.mp3", {"Range": f"bytes={span[0]}-{span[1]}"})
        return status, body

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(get, ranges))
    assert answers == [(206, mp3[start : end + 1]) for start, end in ranges]


def raw_status(url: str, path: str, method: str = "GET") -> int:
    """The status for a request line sent as written (no client-side clean-up of the path)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def test_only_the_built_files_are_served_read_only(server, folder):
    (folder / "two-steps-30s.md").unlink()
    (folder / "two-steps-30s.md").symlink_to(folder.parent / "outside.md")  # a link out of the folder
    for path in (
        "/cache/secret.txt", "/cache/", "/cache", "/two-steps-preview-step1.mp3", "/two-steps.yaml",
        "/../outside.md", "/..%2Foutside.md", "/%2e%2e/outside.md", "/cache%2Fsecret.txt", "/two-steps-30s.md",
        "/.two-steps.mp3", "/chapters/two-steps-preview-step1.json", "/covers/two-steps.jpg", "/etc/passwd",
    ):  # fmt: skip
        assert raw_status(server.url, path) == 404, path
    before = (folder / "two-steps.mp3").read_bytes()
    for method in ("PUT", "POST", "DELETE", "PATCH"):
        assert raw_status(server.url, "/two-steps.mp3", method) == 405, method
    assert (folder / "two-steps.mp3").read_bytes() == before
    assert raw_status(server.url, "/two-steps.mp3", "HEAD") == 200


# ---------------------------------------------------------------- the feed, and the chapters


def test_feed_parses_with_an_item_per_built_mp3_and_chapters_matching_each_mp3(server, folder):
    status, headers, body = fetch(f"{server.url}feed.xml")
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "rss20"
    assert feed.namespaces["itunes"] == "http://www.itunes.com/dtds/podcast-1.0.dtd"
    assert feed.namespaces["podcast"] == "https://podcastindex.org/namespace/1.0"
    assert feed.feed.title == "voiceguide routines"
    assert [entry.title for entry in feed.entries] == ["Two quick steps", f"Two quick steps ({LENGTH})"]
    for entry, name in zip(feed.entries, ["two-steps", f"two-steps-{LENGTH}"], strict=True):
        mp3 = folder / f"{name}.mp3"
        (enclosure,) = [link for link in entry.links if link.rel == "enclosure"]
        assert (enclosure.href, enclosure.length, enclosure.type) == (
            f"{server.url}{name}.mp3", str(mp3.stat().st_size), "audio/mpeg"
        )
        assert int(entry.itunes_duration) == round(read_plan(mp3)["length"])
        assert entry.image.href == f"{server.url}covers/{name}.png"
        assert entry.link == f"{server.url}{name}.html"
        assert entry.podcast_transcript == {
            "url": f"{server.url}{name}.vtt", "type": "text/vtt", "language": "en", "rel": "captions"
        }
        chapters = entry.podcast_chapters
        assert chapters["type"] == "application/json+chapters"
        status, headers, body = fetch(chapters["url"])
        assert (status, headers["Content-Type"]) == (200, "application/json+chapters")
        document = json.loads(body)
        assert document["version"] == "1.2.0" and document["fileName"] == f"{name}.mp3"
        assert [(c["title"], c["startTime"], c["endTime"]) for c in document["chapters"]] == mp3_chapters(mp3)
    assert len({entry.id for entry in feed.entries}) == 2


def test_an_items_guid_stays_with_its_audio_and_changes_when_the_audio_does(folder, tmp_path):
    for name in ("two-steps.mp3", "two-steps.json"):
        shutil.copy(folder / name, tmp_path / name)

    def guid() -> str:
        (entry,) = feedparser.parse(podcast_feed(find_built(tmp_path), Urls("http://127.0.0.1:1/"))).entries
        return entry.id

    first = guid()
    assert guid() == first
    assert feedparser.parse(podcast_feed(find_built(tmp_path), Urls("http://10.0.0.7:8000/"))).entries[0].id == first
    tags = ID3(tmp_path / "two-steps.mp3")
    tags.add(TIT2(encoding=3, text=["A new title"]))
    tags.save(v2_version=3)  # new tags, same audio: the same episode
    assert guid() == first
    data = bytearray((tmp_path / "two-steps.mp3").read_bytes())
    data[-1000] ^= 0xFF  # new audio: a new episode
    (tmp_path / "two-steps.mp3").write_bytes(bytes(data))
    assert guid() != first


# ---------------------------------------------------------------- the index page, on a phone


@needs_chromium
def test_index_lists_each_routine_and_length_and_leads_to_its_player(browser, server, folder):
    from selenium.webdriver.common.by import By

    browser.get(server.url)
    assert browser.find_element(By.CSS_SELECTOR, "h2").text == "Two quick steps"
    wait_for(lambda: browser.execute_script("return document.querySelector('article img').naturalWidth") == 600)
    entries = browser.execute_script(
        "return [...document.querySelectorAll('article li a')]"
        "  .map(a => [a.firstChild.textContent, a.querySelector('span').textContent, a.href])"
    )
    expected = []
    for label, name in (("Play", "two-steps"), (f"{LENGTH} version", f"two-steps-{LENGTH}")):
        plan = read_plan(folder / f"{name}.mp3")
        details = f"0:{int(plan['length']):02d} · {len(plan['chapters'])} chapters"
        expected.append([label, details, f"{server.url}{name}.html"])
    assert entries == expected
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    browser.find_elements(By.CSS_SELECTOR, "article li a")[1].click()
    wait_for(lambda: browser.execute_script("return document.getElementById('audio')?.readyState") >= 1)
    duration = browser.execute_script("return document.getElementById('audio').duration")
    assert duration == pytest.approx(read_plan(folder / f"two-steps-{LENGTH}.mp3")["length"], abs=0.05)
