"""Sessions composed from other routines (`- use: other.yaml`): what they take, what they share, what they report."""

from __future__ import annotations

import dataclasses
import shutil
import signal
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE_RATE, decode, read_plan, run_cli, watch_process

from voiceguide import routine as routines
from voiceguide import sounds
from voiceguide.voices.cache import CACHE_DIR_VARIABLE

ESPEAK = ("--engine", "pyttsx3")
WAIT_SECONDS = 60

WARM_UP = """\
title: Warm-up
intro: This intro belongs to the warm-up alone.
defaults:
  hold: 8s
  countdown: 2
steps:
  - name: Rub the hands
    say: Rub your hands together.
  - name: Both shoulders
    say: Squeeze the left shoulder.
    repeat: 2
    rounds:
      - left
      - right
    between: Now the right.
    cues:
      - at: half
        say: Halfway.
    transition: bell
    min: 2s
outro: This outro belongs to the warm-up alone.
"""
POINTS = """\
title: Points
steps:
  - name: First point
    say: Press the first point.
    hold: 4s
    breathe:
      in: 1s
      out: 1s
  - name: Second point
    say: Press the second point.
    hold: 2s
    weight: 2
"""
SESSION = """\
title: Session
background:
  sound: drone
  level: -30dB
defaults:
  transition: bowl
pronounce:
  hands: hahnds
intro: The session begins.
steps:
  - use: points.yaml
    steps:
      - second point
      - First point
  - use: library/warm-up.yaml
  - name: Rest
    say: Rest your hands.
    hold: 2s
outro: The session ends.
"""


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


def clips(cache: Path) -> set[Path]:
    return set(cache.rglob("*.wav"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The two routines built, then the session that uses them, into one output folder.

    Returns the folder, the clips there before the session was built, and the session's build.
    """
    folder = tmp_path_factory.mktemp("compose")
    write(folder, {"library/warm-up.yaml": WARM_UP, "points.yaml": POINTS, "session.yaml": SESSION})
    own = ("--cache-dir", folder / "cache")
    originals = run_cli(
        "build", folder / "points.yaml", folder / "library" / "warm-up.yaml", "-o", folder / "out", *own, *ESPEAK,
    )
    assert originals.exit_code == 0, originals.stderr
    before = clips(folder / "cache")
    session = run_cli("build", folder / "session.yaml", "-o", folder / "out", *own, *ESPEAK)
    assert session.exit_code == 0, session.stderr
    return folder, before, session


def test_a_session_takes_the_named_steps_in_order_with_all_they_carry(built):
    folder = built[0]
    mp3 = folder / "out" / "session.mp3"
    plan = read_plan(mp3)
    assert [chapter["title"] for chapter in plan["chapters"]] == [
        "Introduction", "Second point", "First point", "Rub the hands", "Both shoulders, left", "Both shoulders, right",
        "Rest", "Closing",
    ]
    assert len(decode(mp3)) / SAMPLE_RATE == pytest.approx(plan["length"], abs=0.05)

    def events(kind: str, chapter: int) -> list[dict]:
        return [event for event in plan["events"] if event["kind"] == kind and event["chapter"] == chapter]

    holds = [round(event["end"] - event["start"], 3) for event in plan["events"] if event["kind"] == "hold"]
    assert holds == [2, 4, 8, 8, 8, 2]  # their own, and the warm-up's default for its steps
    transitions = [event["sound"] for event in plan["events"] if event["kind"] == "sound" and not event.get("cue")]
    assert transitions == ["bowl", "bowl", "bowl", "bell", "bowl"]  # the session's default where a step sets none
    assert [len(events("breath", chapter)) for chapter in range(1, 7)] == [0, 4, 0, 0, 0, 0]
    ticks = [sum(1 for event in events("sound", chapter) if event.get("cue")) for chapter in range(1, 7)]
    assert ticks == [0, 0, 2, 2, 2, 0]  # the warm-up's countdown, only on its steps
    said = [event["text"] for event in plan["events"] if event["kind"] == "speech"]
    assert said == [
        "The session begins.", "Press the second point.", "Press the first point.", "Rub your hands together.",
        "Squeeze the left shoulder.", "Halfway.", "Now the right.", "Halfway.", "Rest your hands.", "The session ends.",
    ]  # no intro or outro of the routines used
    assert plan["background"] == {"sound": "drone", "level": -30.0}


def test_used_steps_are_the_steps_of_their_routine_with_this_routines_defaults_underneath(built):
    folder = built[0]
    session = routines.load(folder / "session.yaml")
    points = routines.load(folder / "points.yaml")
    warm_up = routines.load(folder / "library" / "warm-up.yaml")
    bowl = sounds.builtin_path("bowl")
    assert session.steps[:4] == (
        dataclasses.replace(points.steps[1], transition=bowl),
        dataclasses.replace(points.steps[0], transition=bowl),
        dataclasses.replace(warm_up.steps[0], transition=bowl),
        warm_up.steps[1],
    )
    assert [str(step.location) for step in session.steps] == [
        f"{folder / 'points.yaml'}:9:5", f"{folder / 'points.yaml'}:3:5",
        f"{folder / 'library' / 'warm-up.yaml'}:7:5", f"{folder / 'library' / 'warm-up.yaml'}:9:5",
        f"{folder / 'session.yaml'}:16:5",
    ]
    assert session.used == ((folder / "points.yaml").resolve(), (folder / "library" / "warm-up.yaml").resolve())


def test_used_lines_are_voiced_once_for_every_routine_that_uses_them(built):
    """The same text in the same voice is the same clip; the session's respelling of "hands" is its own."""
    folder, before, session = built
    made = clips(folder / "cache") - before
    assert len(made) == 4  # its intro, its step and its outro, and "Rub your hands together." respelled
    assert ": 5 clips reused, 4 new, in " in session.stdout


def test_an_edit_in_a_used_routine_builds_the_session_again(built, tmp_path, monkeypatch):
    copy = shutil.copytree(built[0], tmp_path / "copy")
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(copy / "cache"))  # the copy's own clips
    assert run_cli("build", copy / "session.yaml", "-o", copy / "out", *ESPEAK).stdout.startswith("up to date: ")
    warm_up = copy / "library" / "warm-up.yaml"
    warm_up.write_text(WARM_UP.replace("Rub your hands together.", "Rub your palms together."), encoding="utf-8")
    result = run_cli("build", copy / "session.yaml", "-o", copy / "out", *ESPEAK)
    assert result.exit_code == 0, result.stderr
    assert ": 8 clips reused, 1 new, in " in result.stdout
    assert 'changed: library/warm-up.yaml; the words of "Rub the hands"\n' in result.stdout
    assert "Rub your palms together." in (copy / "out" / "session.md").read_text(encoding="utf-8")


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows, not SIGINT")
def test_watch_builds_the_session_again_when_a_used_routine_is_saved(built, tmp_path, monkeypatch):
    copy = shutil.copytree(built[0], tmp_path / "copy")
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(copy / "cache"))  # the copy's own clips
    with watch_process(copy, "session.yaml", "-o", "out", *ESPEAK) as (process, lines):
        assert lines.get(timeout=WAIT_SECONDS) == "watching session.yaml; Ctrl-C stops\n"
        assert lines.get(timeout=WAIT_SECONDS) == "up to date: out/session.mp3\n"
        (copy / "points.yaml").write_text(POINTS.replace("hold: 2s", "hold: 3s"), encoding="utf-8")
        assert lines.get(timeout=WAIT_SECONDS) == f"saved: {(copy / 'points.yaml').resolve()}\n"
        assert lines.get(timeout=WAIT_SECONDS).startswith("voice: pyttsx3 ")
        assert lines.get(timeout=WAIT_SECONDS).startswith("built out/session.mp3 (")
        assert lines.get(timeout=WAIT_SECONDS) == "changed: points.yaml\n"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=WAIT_SECONDS) == 0
    holds = [event for event in read_plan(copy / "out" / "session.mp3")["events"] if event["kind"] == "hold"]
    assert holds[0]["end"] - holds[0]["start"] == 3
    assert process.stderr.read() == ""


# ---------------------------------------------------------------- mistakes, each pointing into the right file


def problems(folder: Path, files: dict[str, str], routine: str = "session.yaml") -> list[str]:
    """`voiceguide validate` on `routine` among `files` (exit 2 expected): its error lines, paths from `folder`."""
    write(folder, files)
    result = run_cli("validate", folder / routine)
    assert (result.exit_code, result.stdout) == (2, ""), result.stdout
    return [line.replace(f"{folder}/", "") for line in result.stderr.splitlines()]


def test_a_missing_step_name_lists_the_names_there(tmp_path):
    session = "title: S\nsteps:\n  - use: points.yaml\n    steps:\n      - First point\n      - Third point\n"
    assert problems(tmp_path, {"points.yaml": POINTS, "session.yaml": session}) == [
        "error: session.yaml:6:9: steps[0].steps[1]: no step named 'Third point' in points.yaml; its steps are: "
        "First point, Second point",
    ]


def test_a_problem_inside_a_used_routine_points_into_that_file(tmp_path):
    broken = POINTS.replace("hold: 4s", "hold: soon")
    session = "title: S\nsteps:\n  - use: points.yaml\n  - name: Own\n    say: Hi.\n    hold: later\n"
    assert problems(tmp_path, {"points.yaml": broken, "session.yaml": session}) == [
        "error: points.yaml:5:11: steps[0].hold: expected a duration like 45s, 1m30s, 2m or 1:30, got 'soon'",
        "error: session.yaml:6:11: steps[1].hold: expected a duration like 45s, 1m30s, 2m or 1:30, got 'later'",
    ]
    tabbed = POINTS.replace("  - name: Second point", "\t- name: Second point")
    assert problems(tmp_path, {"points.yaml": tabbed}) == [
        "error: points.yaml:9:1: a tab indents this line; indent with spaces only",
        "error: session.yaml:6:11: steps[1].hold: expected a duration like 45s, 1m30s, 2m or 1:30, got 'later'",
    ]


def test_a_loop_of_routines_is_an_error(tmp_path):
    files = {
        "session.yaml": "title: S\nsteps:\n  - use: more/other.yaml\n",
        "more/other.yaml": "title: O\nsteps:\n  - name: A\n    say: Hi.\n  - use: ../session.yaml\n",
    }
    assert problems(tmp_path, files) == [
        "error: more/other.yaml:5:10: steps[1].use: makes a loop: session.yaml uses more/other.yaml uses session.yaml; "
        "a routine cannot use itself, even through another",
    ]
    assert problems(tmp_path, {"self.yaml": "title: S\nsteps:\n  - use: self.yaml\n"}, "self.yaml") == [
        "error: self.yaml:3:10: steps[0].use: makes a loop: self.yaml uses self.yaml; a routine cannot use itself, "
        "even through another",
    ]


def test_use_items_name_an_existing_routine_in_the_same_language_and_nothing_else(tmp_path):
    french = "title: F\nlanguage: fr\nsteps:\n  - name: Un\n    say: Bonjour.\n"
    session = (
        "title: S\nsteps:\n  - use: missing.yaml\n  - use: french.yaml\n  - use: points.yaml\n    hold: 3s\n"
        "    steps: []\n"
    )
    assert problems(tmp_path, {"french.yaml": french, "points.yaml": POINTS, "session.yaml": session}) == [
        f"error: session.yaml:3:10: steps[0].use: no routine file 'missing.yaml' (looked in {tmp_path})",
        "error: session.yaml:4:10: steps[1].use: is a routine in 'fr', this one is in 'en'; use routines in one "
        "language",
        "error: session.yaml:6:5: steps[2].hold: unknown key; expected one of use, steps",
        "error: session.yaml:7:12: steps[2].steps: is an empty list; name the steps to take, or leave 'steps' out to "
        "take them all",
    ]
