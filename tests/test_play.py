"""`voiceguide play`: streaming through miniaudio's null backend (no sound card here), the steps it shows, its keys.

The null backend consumes samples in real time as a sound card would, and plays them into nothing.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from conftest import decode, wait_for

from voiceguide import audio
from voiceguide.built import read_track
from voiceguide.export import Tags, encode_mp3, id3_tag
from voiceguide.play import BACKEND_VARIABLE, Feed
from voiceguide.timeline import Chapter

TITLES = ["Introduction", "Warm the hands", "Closing"]
FOREIGN_BACKEND = {"linux": "coreaudio", "darwin": "alsa"}.get(sys.platform, "alsa")  # cannot start on this system


def write_track(path, step_seconds: float):
    """An MP3 with three chapters of `step_seconds` each: a tone that rises from step to step."""
    step = audio.samples(step_seconds)
    chapters = [Chapter(title, i * step, (i + 1) * step) for i, title in enumerate(TITLES)]
    path.write_bytes(id3_tag(Tags(title="Short"), chapters))
    time_axis = np.arange(step) / audio.SAMPLE_RATE
    tones = [(np.sin(2 * np.pi * (220 * (i + 1)) * time_axis) * 8000).astype(np.int16) for i in range(3)]
    with path.open("r+b") as file:
        encode_mp3(tones, file)
    return path


@pytest.fixture
def track(tmp_path):
    return write_track(tmp_path / "short.mp3", 0.4)


@pytest.fixture
def null_audio(monkeypatch):
    monkeypatch.setenv(BACKEND_VARIABLE, "null")


def test_play_shows_each_step_as_the_track_reaches_it(cli, track, null_audio, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    started = time.monotonic()
    result = cli("play", track)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "0:00 Introduction (1/3)", "0:00 Warm the hands (2/3)", "0:00 Closing (3/3)", f"played {track} (1.2s)"
    ]
    assert time.monotonic() - started >= 1.2  # played in real time, to the end
    assert list(scratch.iterdir()) == []  # streamed: no temporary file


def test_the_device_gets_exactly_the_tracks_samples_and_a_skip_lands_on_the_sample(two_steps_mp3):
    """What the device is handed, in the sizes it asks for, is the decoded MP3; from a chapter, the rest of it."""
    expected = (decode(two_steps_mp3) * 32768).astype(np.int16)
    feed = Feed(lambda start: audio.stream_file(two_steps_mp3, start, 4096), len(expected))
    feed.seek(0)
    taken = []
    while not feed.ended:
        taken.append(feed.take(2205))  # 50 ms, as the device asks
    assert np.array_equal(np.concatenate(taken), expected)
    assert feed.position == len(expected)
    start = audio.samples(read_track(two_steps_mp3).chapters[2].start)
    feed.seek(start)
    feed.paused = True
    assert len(feed.take(2205)) == 0 and feed.position == start
    feed.paused = False
    assert np.array_equal(feed.take(44_100), expected[start : start + 44_100])
    assert feed.position == start + 44_100


def test_keys_pause_and_skip_steps_on_a_terminal(tmp_path):
    """The real CLI on a pseudo-terminal, as a user types at it."""
    pty = pytest.importorskip("pty")
    termios = pytest.importorskip("termios")
    mp3 = write_track(tmp_path / "steps.mp3", 5.0)
    leader, follower = pty.openpty()
    settings = termios.tcgetattr(follower)
    process = subprocess.Popen(
        [sys.executable, "-m", "voiceguide", "play", str(mp3)], stdin=follower, stdout=follower, stderr=follower,
        env={**os.environ, BACKEND_VARIABLE: "null"}, close_fds=True,
    )  # fmt: skip
    screen = bytearray()

    def shown() -> str:
        """All the terminal was sent so far."""
        while select.select([leader], [], [], 0.05)[0]:
            screen.extend(os.read(leader, 4096))
        return screen.decode("utf-8", errors="replace")

    def latest() -> str:
        """The status line as the terminal shows it now."""
        return shown().split("\r")[-1].replace("\x1b[K", "")

    def status(pattern: str) -> re.Match:
        return wait_for(lambda: re.fullmatch(pattern, latest()), 10)

    try:
        wait_for(lambda: "space: pause/play" in shown())
        status(r"0:0\d\.\d / 0:15  Introduction \(1/3\)")
        os.write(leader, b" ")
        paused = status(r"(0:0\d\.\d) / 0:15  Introduction \(1/3\)  \(paused\)").group(1)
        time.sleep(0.5)
        assert latest() == f"{paused} / 0:15  Introduction (1/3)  (paused)"  # a paused position stays put
        os.write(leader, b"n")
        status(r"0:05\.0 / 0:15  Warm the hands \(2/3\)  \(paused\)")  # exactly at the step's start
        os.write(leader, b"\x1b[C")  # the right arrow
        status(r"0:10\.0 / 0:15  Closing \(3/3\)  \(paused\)")
        os.write(leader, b"p")
        status(r"0:05\.0 / 0:15  Warm the hands \(2/3\)  \(paused\)")
        os.write(leader, b" ")
        status(r"0:05\.[2-9] / 0:15  Warm the hands \(2/3\)")  # playing on from there
        os.write(leader, b"q")
        assert process.wait(10) == 0
        assert re.search(r"\r\x1b\[Kstopped at 0:0[5-6]\.\d in Warm the hands\r\n$", shown())  # the status line cleared
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert termios.tcgetattr(follower) == settings  # the terminal is as it was
        os.close(leader)
        os.close(follower)


def test_a_chapter_title_with_control_characters_is_shown_not_obeyed(cli, null_audio, tmp_path):
    """An MP3 from anywhere may carry a title that would set the terminal's title ("\\e]0;...\\a")."""
    path = tmp_path / "hostile.mp3"
    step = audio.samples(0.2)
    path.write_bytes(id3_tag(Tags(title="Hostile"), [Chapter("T\x1b]0;HIJACK\x07", 0, step)]))
    with path.open("r+b") as file:
        encode_mp3([np.zeros(step, dtype=np.int16)], file)
    result = cli("play", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "0:00 T\\x1b]0;HIJACK\\x07 (1/1)"


def test_no_audio_device_is_one_clear_line(cli, track, monkeypatch):
    monkeypatch.setenv(BACKEND_VARIABLE, FOREIGN_BACKEND)
    result = cli("play", track)
    assert result.exit_code == 2
    assert result.stdout == ""
    device = r"no audio output device found \(miniaudio: [^\n]+\)"
    assert re.fullmatch(rf"error: cannot play {re.escape(str(track))}: {device}\n", result.stderr)


def test_an_unknown_backend_is_named(cli, track, monkeypatch):
    monkeypatch.setenv(BACKEND_VARIABLE, "speakers")
    result = cli("play", track)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {BACKEND_VARIABLE}: no audio backend 'speakers'; use one of wasapi, ")
    assert result.stderr.endswith(", alsa, jack, aaudio, opensl, null\n")


@pytest.mark.parametrize("content, message", [(None, "no such file"), (b"not audio at all", "not an MP3 file")])
def test_play_a_missing_or_broken_file(cli, tmp_path, content, message):
    path = tmp_path / "track.mp3"
    if content is not None:
        path.write_bytes(content)
    result = cli("play", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}: {message}")


def test_play_reads_the_chapters_of_a_built_track(two_steps_mp3):
    track = read_track(two_steps_mp3)
    titles = [chapter.title for chapter in track.chapters]
    assert titles == ["Introduction", "Warm the hands", "Rest the palms", "Closing"]
    assert track.chapter_at(0.0) == 0 and track.chapter_at(track.chapters[2].start + 0.01) == 2
