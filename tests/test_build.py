"""End to end: the real CLI, the real default voice, a real MP3, decoded and measured."""

from __future__ import annotations

import shutil

import mutagen.mp3
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import FIXTURES, SAMPLE_RATE, assert_speech_where_planned, decode, level_db, read_plan, span

from voiceguide.cli import main
from voiceguide.voices.cache import CACHE_DIR_VARIABLE


@pytest.fixture(scope="module")
def first_build(tmp_path_factory):
    """Build the two-step fixture routine once for the module: (routine path, mp3 path, result)."""
    folder = tmp_path_factory.mktemp("first-build")
    routine = folder / "two-steps.yaml"
    shutil.copy(FIXTURES / "two-steps.yaml", routine)
    command = ["build", str(routine), "-o", str(folder / "out"), "--cache-dir", str(folder / "cache")]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    return routine, folder / "out" / "two-steps.mp3", result


@pytest.fixture
def built(first_build, tmp_path, monkeypatch):
    """A copy of the first build (routine, outputs and its own clip cache, which the test then uses) to change."""
    routine, mp3, result = first_build
    shutil.copytree(routine.parent, tmp_path, dirs_exist_ok=True)
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "cache"))
    return tmp_path / routine.name, tmp_path / "out" / mp3.name, result


def test_build_writes_mp3_whose_decoded_length_is_the_plan(built):
    _, mp3, result = built
    plan = read_plan(mp3)
    samples = decode(mp3)
    assert abs(len(samples) / SAMPLE_RATE - plan["length"]) < 0.05
    assert "0 clips reused, 5 new" in result.stdout


def test_plan_follows_the_routine(built):
    _, mp3, _ = built
    plan = read_plan(mp3)
    assert [c["title"] for c in plan["chapters"]] == ["Introduction", "Warm the hands", "Rest the palms", "Closing"]
    holds = [e for e in plan["events"] if e["kind"] == "hold"]
    assert [round(h["end"] - h["start"], 3) for h in holds] == [3.0, 4.0]
    speech = [e["text"] for e in plan["events"] if e["kind"] == "speech"]
    assert speech == [
        "Welcome. Sit comfortably.",
        "Rub your hands together until they feel warm.",
        "Place both palms on the upper back.",
        "Let them rest there.",
        "That is all. Well done.",
    ]
    sounds = [e["sound"] for e in plan["events"] if e["kind"] == "sound"]
    assert sounds == ["chime", "bell"]


def test_speech_where_planned_and_holds_silent(built):
    _, mp3, _ = built
    assert_speech_where_planned(mp3)


def test_transition_sound_is_audible_between_steps(built):
    _, mp3, _ = built
    samples = decode(mp3)
    chime = next(e for e in read_plan(mp3)["events"] if e["kind"] == "sound")
    ring = span(samples, chime["start"], chime["start"] + 0.5)
    assert level_db(ring) > -35
    spectrum = np.abs(np.fft.rfft(ring * np.hanning(len(ring))))
    peak_hz = np.fft.rfftfreq(len(ring), 1 / SAMPLE_RATE)[np.argmax(spectrum)]
    assert abs(peak_hz - 660) < 15  # the chime's fundamental


def test_no_clicks_at_clip_edges(built):
    _, mp3, _ = built
    samples = decode(mp3)
    for event in read_plan(mp3)["events"]:
        if event["kind"] == "speech":
            # Each clip fades in over 5 ms: its first millisecond stays under a tenth of full scale.
            edge = span(samples, event["start"], event["start"] + 0.001)
            assert np.abs(edge).max() < 0.1


def test_mp3_format_tags_and_chapters(built):
    _, mp3, _ = built
    plan = read_plan(mp3)
    info = mutagen.mp3.MP3(mp3)
    assert info.info.sample_rate == SAMPLE_RATE
    assert info.info.channels == 1
    assert info.info.bitrate_mode == mutagen.mp3.BitrateMode.CBR
    assert info.info.bitrate == 96_000
    assert abs(info.info.length - plan["length"]) < 0.05
    tags = info.tags
    assert tags.version[:2] == (2, 3)
    assert str(tags["TIT2"]) == "Two quick steps"
    assert str(tags["TALB"]) == "Two quick steps"
    chapters = tags.getall("CHAP")  # as stored: players that read the frames in turn must meet them in time order
    assert [str(c.sub_frames["TIT2"]) for c in chapters] == [c["title"] for c in plan["chapters"]]
    for frame, planned in zip(chapters, plan["chapters"], strict=True):
        assert abs(frame.start_time / 1000 - planned["start"]) < 0.002
        assert abs(frame.end_time / 1000 - planned["end"]) < 0.002
    (toc,) = tags.getall("CTOC")
    assert list(toc.child_element_ids) == [c.element_id for c in chapters]


def test_second_build_reuses_every_clip(built, cli):
    routine, mp3, _ = built
    first = mp3.read_bytes()
    result = cli("build", routine, "-o", mp3.parent, "--force")  # unforced, it is up to date (test_edit_loop.py)
    assert result.exit_code == 0
    assert "5 clips reused, 0 new" in result.stdout
    assert mp3.read_bytes() == first


def test_edited_line_is_the_only_clip_made_again(built, cli):
    routine, mp3, _ = built
    before = decode(mp3)
    routine.write_text(routine.read_text().replace("Let them rest there.", "Let them rest there, still."))
    result = cli("build", routine, "-o", mp3.parent)
    assert result.exit_code == 0
    assert "4 clips reused, 1 new" in result.stdout
    after = decode(mp3)
    first_step = next(c for c in read_plan(mp3)["chapters"] if c["title"] == "Rest the palms")
    unchanged = int(first_step["start"] * SAMPLE_RATE) - SAMPLE_RATE // 10
    before, after = before[:unchanged], after[:unchanged]
    # The track plays at unity gain (levels.py), so an edit elsewhere leaves this part as it was;
    # what differs is MP3 coding noise near the edit. The reused clips must be the same sound.
    gain = np.dot(after, before) / np.dot(before, before)
    assert gain == pytest.approx(1.0, abs=0.01)
    assert level_db(after - gain * before) < level_db(before) - 20


def test_output_files_are_readable_by_others(built):
    _, mp3, _ = built
    assert mp3.stat().st_mode & 0o044


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "voiceguide", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "build" in result.stdout and "validate" in result.stdout


def test_long_first_line_of_a_fresh_worker_is_voiced(cli, tmp_path):
    """pyttsx3 silently writes nothing for a long first clip in a process; the engine warms up."""
    routine = tmp_path / "long.yaml"
    line = "Place your thumbs on the lower back, one on each side of the spine. " * 6
    routine.write_text(f"title: Long\nsteps:\n  - name: One\n    say: {line.strip()}\n")
    result = cli("build", routine, "-o", tmp_path / "out", "--jobs", "1", "--engine", "pyttsx3")
    assert result.exit_code == 0, result.stderr
    speech = next(e for e in read_plan(tmp_path / "out" / "long.mp3")["events"] if e["kind"] == "speech")
    assert speech["end"] - speech["start"] > 15
