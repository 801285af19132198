"""`voiceguide play`: the player it starts, the steps it shows, and what it says without a device.

The machines tests run on have no sound card, so a stand-in player records what it was given.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from voiceguide import audio
from voiceguide.export import Tags, encode_mp3, write_tags
from voiceguide.timeline import Chapter

STEP = audio.samples(0.4)
TITLES = ["Introduction", "Warm the hands", "Closing"]


@pytest.fixture
def track(tmp_path):
    """A 1.2 s MP3 with three chapters of 0.4 s each."""
    path = tmp_path / "short.mp3"
    write_tags(path, Tags(title="Short"), [Chapter(title, i * STEP, (i + 1) * STEP) for i, title in enumerate(TITLES)])
    with path.open("r+b") as file:
        encode_mp3([np.zeros(3 * STEP, dtype=np.int16)], file)
    return path


def fake_player(folder, body: str):
    """Put an executable 'aplay' that runs `body` (Python, with the WAV path as `wav`) on PATH alone."""
    folder.mkdir()
    script = folder / "aplay"
    script.write_text(f"#!{sys.executable}\nimport sys, time\nwav = sys.argv[1]\n{body}\n")
    script.chmod(0o755)
    return folder


def test_play_shows_each_step_as_the_track_reaches_it(cli, track, tmp_path, monkeypatch):
    record = tmp_path / "played.txt"
    body = f"import wave\nopen({str(record)!r}, 'w').write(str(wave.open(wav).getnframes()))\ntime.sleep(1.3)"
    monkeypatch.setenv("PATH", str(fake_player(tmp_path / "bin", body)))
    result = cli("play", track)
    assert result.exit_code == 0, result.stderr
    assert [line.split(" ", 1)[1] for line in result.stdout.splitlines()[:-1]] == [
        "Introduction (1/3)", "Warm the hands (2/3)", "Closing (3/3)"
    ]
    assert result.stdout.splitlines()[0].startswith("0:00 ")
    assert int(record.read_text()) == 3 * STEP


def test_play_without_an_audio_device_says_so_in_one_line(cli, track, tmp_path, monkeypatch):
    body = "print('aplay: main:831: audio open error: No such file or directory', file=sys.stderr)\nsys.exit(1)"
    monkeypatch.setenv("PATH", str(fake_player(tmp_path / "bin", body)))
    result = cli("play", track)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: cannot play {track}: aplay found no audio device "
        "(aplay: main:831: audio open error: No such file or directory)\n"
    )


def test_play_without_a_player_says_what_to_install(cli, track, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    result = cli("play", track)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: no audio player found (looked for afplay, pw-play, paplay, aplay); install one"
    )


@pytest.mark.parametrize("content, message", [(None, "no such file"), (b"not audio at all", "not an MP3 file")])
def test_play_a_missing_or_broken_file(cli, tmp_path, content, message):
    path = tmp_path / "track.mp3"
    if content is not None:
        path.write_bytes(content)
    result = cli("play", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}: {message}")


def test_play_reads_the_chapters_of_a_built_track(two_steps_mp3):
    from voiceguide.play import read_track

    track = read_track(two_steps_mp3)
    assert track.titles == ("Introduction", "Warm the hands", "Rest the palms", "Closing")
    assert track.chapter_at(0.0) == 0 and track.chapter_at(track.starts[2] + 0.01) == 2
