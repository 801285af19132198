"""plan before any clip is voiced: its speech lengths are estimated from the voice's pace, and the
timeline it prints must come within 2% of the track a build then makes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import FIXTURES, ROUTINES, read_plan, run_cli

from voiceguide.build import BuildOptions, build, plan_routine
from voiceguide.voices.choice import VoiceOverride

BUNDLED = sorted(path.name for path in ROUTINES.glob("*.yaml"))
TOLERANCE = 0.02


def planned_seconds(routine, *options: str) -> float:
    """The total `plan` prints, in seconds, after checking that every line was estimated."""
    result = run_cli("plan", routine, *options)
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[0]
    assert re.search(r"\(speech: 0 lines from cached clips, \d+ estimated\)$", header), header
    total = header.split(" (speech")[0].rsplit(" ", 1)[1]
    parts = [int(part) for part in total.split(":")]
    return sum(part * 60**power for power, part in enumerate(reversed(parts)))


def built_seconds(routine, out, *options: str) -> float:
    result = run_cli("build", routine, "-o", out, *options)
    assert result.exit_code == 0, result.stderr
    return read_plan(out / routine.with_suffix(".mp3").name)["length"]


@pytest.mark.parametrize("name", ["two-steps.yaml", "paced.yaml"])
def test_plan_of_an_unvoiced_routine_comes_within_two_percent_of_the_build(name, own_cache, tmp_path):
    routine = FIXTURES / name
    estimate = planned_seconds(routine, "--engine", "pyttsx3")
    built = built_seconds(routine, tmp_path / "out", "--engine", "pyttsx3")
    assert estimate == pytest.approx(built, rel=TOLERANCE, abs=1.0)  # plan prints whole seconds


LINES = [
    "Glide your palms slowly up the back, then fan them out across the shoulders.",
    "Knead the muscle beside the spine with your thumbs, in small unhurried circles.",
    "Rest both hands on the lower back and let your partner breathe into them.",
    "Press gently with the heels of your hands, moving outward from the spine.",
    "Now move to the shoulders, and squeeze them softly between thumb and fingers.",
    "Finish with long strokes from the neck down to the waist, three times.",
]


def speech_routine(path, lines) -> Path:
    """A routine that is mostly speech, so its length shows how well the speech was estimated."""
    steps = "".join(f"  - name: Step {index}\n    say: {line}\n    hold: 1s\n" for index, line in enumerate(lines))
    path.write_text(f"title: Speech\nsteps:\n{steps}")
    return path


def test_the_pace_of_the_voices_own_clips_replaces_the_typical_one(own_cache, tmp_path):
    voice = VoiceOverride(engine="pyttsx3", speed=0.6)  # eSpeak slows down a little less than 1/0.6
    first = speech_routine(tmp_path / "first.yaml", LINES[:3])
    second = speech_routine(tmp_path / "second.yaml", LINES[3:])
    typical = plan_routine(second, voice=voice).timeline.length
    build(first, BuildOptions(output_dir=tmp_path / "out", voice=voice))  # other lines, the same voice
    planned = plan_routine(second, voice=voice)
    assert planned.lines_estimated == 3
    built = build(second, BuildOptions(output_dir=tmp_path / "out", voice=voice)).timeline.length
    assert abs(planned.timeline.length - built) < abs(typical - built) / 2
    assert planned.timeline.length == pytest.approx(built, rel=TOLERANCE)


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLED)
def test_plan_of_every_bundled_routine_comes_within_two_percent_of_the_build(name, own_cache, tmp_path):
    routine = ROUTINES / name
    estimate = planned_seconds(routine)
    assert estimate == pytest.approx(built_seconds(routine, tmp_path / "out"), rel=TOLERANCE)
