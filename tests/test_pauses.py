"""Pauses inside narration: `{pause: 2s}` between two lines, from the routine file to the decoded MP3."""

from __future__ import annotations

import re
import textwrap

import pytest
from conftest import SAMPLE_RATE, decode, read_plan, span, window_levels

from voiceguide import audio, timeline
from voiceguide import routine as routines
from voiceguide.routine import Pause

ROUTINE = """\
    title: Pauses
    intro:
      - Welcome.
      - pause: 1.5s
      - Sit comfortably.
    steps:
      - name: Lower back
        say:
          - Rest your palms on the lower back.
          - pause: 2s
          - Now lean in slowly.
          - And breathe.
        hold: 40s
        repeat: 2
        between:
          - The other side.
          - pause: 3s
          - Lean in again.
    outro:
      - Rest now.
      - {pause: 2.5s}
      - You are done.
    """


def make(tmp_path, text=ROUTINE):
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(text))
    return routines.load(path)


def speech(routine):
    """Made-up clip lengths, different for every line, so no gap can come out right by chance."""
    return {text: audio.samples(1 + len(text) / 17) for text in timeline.spoken_lines(routine)}


def sound_length(path):
    return audio.samples(2.0)


def spoken(plan, text):
    return [event for event in plan.of_kind("speech") if event.text == text]


def test_a_pause_is_read_as_part_of_the_narration(tmp_path):
    routine = make(tmp_path)
    assert routine.intro == ("Welcome.", Pause(1.5), "Sit comfortably.")
    assert routine.steps[0].say[1] == Pause(2.0)
    assert routine.steps[0].between == ("The other side.", Pause(3.0), "Lean in again.")
    assert routine.outro[1] == Pause(2.5)
    assert "pause" not in "".join(timeline.spoken_lines(routine))  # nothing voices a pause


@pytest.mark.parametrize(
    "before, after, seconds",
    [
        ("Welcome.", "Sit comfortably.", 1.5),
        ("Rest your palms on the lower back.", "Now lean in slowly.", 2.0),
        ("The other side.", "Lean in again.", 3.0),
        ("Rest now.", "You are done.", 2.5),
    ],
)
def test_the_gap_between_two_lines_is_the_pause_to_the_sample(tmp_path, before, after, seconds):
    routine = make(tmp_path)
    plan = timeline.plan(routine, speech(routine), sound_length)
    first, second = spoken(plan, before)[0], spoken(plan, after)[0]
    assert second.start - first.end == seconds * SAMPLE_RATE
    (pause,) = [event for event in plan.of_kind("pause") if event.start == first.end]
    assert (pause.end, pause.chapter) == (second.start, first.chapter)


def test_lines_without_a_pause_keep_the_short_gap(tmp_path):
    routine = make(tmp_path)
    plan = timeline.plan(routine, speech(routine), sound_length)
    first, second = spoken(plan, "Now lean in slowly.")[0], spoken(plan, "And breathe.")[0]
    assert second.start - first.end == timeline.LINE_GAP
    assert len(plan.of_kind("pause")) == 4  # the step's pause once: its second round says `between`


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_fitting_to_a_length_keeps_pauses_as_they_are(tmp_path, factor):
    routine = make(tmp_path)
    natural = timeline.plan(routine, speech(routine), sound_length)
    target = round(natural.length * factor) + 11
    fitted = timeline.plan(routine, speech(routine), sound_length, length=target)
    assert fitted.length == target
    assert [event.length for event in fitted.of_kind("pause")] == [event.length for event in natural.of_kind("pause")]
    assert [event.length for event in fitted.of_kind("hold")] != [event.length for event in natural.of_kind("hold")]


BAD = {
    "bad duration": (
        "  - name: A\n    say:\n      - One.\n      - pause: soon\n      - Two.\n",
        "r.yaml:7:16: steps[0].say[1].pause: expected a duration like 45s, 1m30s, 2m or 1:30, got 'soon'",
    ),
    "zero": (
        "  - name: A\n    say: [One., {pause: 0s}, Two.]\n",
        "r.yaml:5:25: steps[0].say[1].pause: is 0s; give a pause longer than that, or remove it",
    ),
    "first": (
        "  - name: A\n    say:\n      - pause: 2s\n      - One.\n",
        "r.yaml:6:9: steps[0].say[0]: is a pause before the first line; a pause goes between two lines",
    ),
    "last": (
        "  - name: A\n    say: [One., {pause: 2s}]\n",
        "r.yaml:5:17: steps[0].say[1]: is a pause after the last line; a pause goes between two lines",
    ),
    "two in a row": (
        "  - name: A\n    say: [One., {pause: 2s}, {pause: 1s}, Two.]\n",
        "r.yaml:5:30: steps[0].say[2]: follows another pause; make them one pause",
    ),
    "misspelled": (
        "  - name: A\n    say: [One., {pasue: 2s}, Two.]\n",
        "r.yaml:5:18: steps[0].say[1].pasue: unknown key; did you mean 'pause'? expected one of pause\n"
        "error: r.yaml:5:17: steps[0].say[1]: missing required key 'pause' (how long to pause between two lines, "
        "like 2s, in place of the short gap)",
    ),
    "in between": (
        "  - name: A\n    say: One.\n    repeat: 2\n    between: [{pause: 2s}, Two.]\n",
        "r.yaml:7:15: steps[0].between[0]: is a pause before the first line; a pause goes between two lines",
    ),
    "in a round's name": (
        "  - name: A\n    say: One.\n    repeat: 2\n    rounds: [left, {pause: 2s}]\n",
        "r.yaml:7:20: steps[0].rounds: expected a single value, got a mapping",
    ),
    "in a cue": (
        "  - name: A\n    say: One.\n    hold: 20s\n    cues: [{at: 5s, say: [Two., {pause: 2s}, Three.]}]\n",
        "r.yaml:7:26: steps[0].cues[0].say: expected a single value, got a list",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_misplaced_or_bad_pause_is_an_error_at_its_line(case, cli, tmp_path):
    steps, expected = BAD[case]
    path = tmp_path / "r.yaml"
    path.write_text(f"title: T\nintro: Hello.\nsteps:\n{steps}")
    for command in ("validate", "plan", "build"):
        result = cli(command, path, *(["-o", tmp_path / "out"] if command == "build" else []))
        assert result.exit_code == 2
        assert result.stderr.replace(str(path), "r.yaml") == f"error: {expected}\n", command
    assert not (tmp_path / "out").exists()


def test_an_intro_pause_in_the_outro_position_is_an_error(tmp_path, cli):
    path = tmp_path / "r.yaml"
    path.write_text("title: T\nsteps:\n  - {name: A, say: One.}\noutro:\n  - Bye.\n  - pause: 2s\n")
    result = cli("validate", path)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}:6:5: outro[1]: is a pause after the last line; a pause goes between two lines\n"
    )


def test_plan_shows_the_pauses_of_each_chapter(cli, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(ROUTINE))
    result = cli("plan", path)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["start", "chapter", "speech", "pauses", "hold", "cues"]
    rows = [(line[9:49].strip(), line[49:].split()[1]) for line in lines[2:-1]]  # (chapter, pauses)
    assert rows == [
        ("Introduction", "1.5s"),
        ("Lower back (round 1 of 2)", "2s"),
        ("Lower back (round 2 of 2)", "3s"),
        ("Closing", "2.5s"),
    ]


def test_a_built_track_is_quiet_through_the_pause_and_speaks_right_after(cli, tmp_path):
    """A real build with pyttsx3: the decoded MP3 is silent in the pause, and the next line begins at its end."""
    path = tmp_path / "r.yaml"
    path.write_text(
        textwrap.dedent("""\
        title: A pause
        steps:
          - name: Lower back
            say:
              - Rest your palms on the lower back.
              - pause: 2s
              - Now lean in slowly.
            hold: 2s
            transition: none
        """)
    )
    out = tmp_path / "out"
    result = cli("build", path, "-o", out, "--engine", "pyttsx3")
    assert result.exit_code == 0, result.stderr
    mp3 = out / "r.mp3"
    plan = read_plan(mp3)
    (pause,) = [event for event in plan["events"] if event["kind"] == "pause"]
    before, after = [event for event in plan["events"] if event["kind"] == "speech"]
    assert (before["end"], after["start"]) == (pause["start"], pause["end"])
    assert pause["end"] - pause["start"] == pytest.approx(2.0, abs=0.001)

    samples = decode(mp3)
    quiet = window_levels(span(samples, pause["start"] + 0.05, pause["end"] - 0.05))
    assert quiet.max() < -60, f"loudest 20 ms of the pause: {quiet.max():.1f} dBFS"
    speaking = window_levels(span(samples, pause["end"], pause["end"] + 0.5))
    assert speaking.max() > -30, f"loudest 20 ms after the pause: {speaking.max():.1f} dBFS"
    assert window_levels(span(samples, before["start"], before["end"])).max() > -30

    stamps = re.findall(r"(\d+):(\d\d):(\d\d\.\d{3})", mp3.with_suffix(".vtt").read_text())
    seconds = [3600 * int(hours) + 60 * int(minutes) + float(rest) for hours, minutes, rest in stamps]
    assert len(seconds) == 4  # two captions and none in the pause: the first ends where it begins, the next at its end
    assert seconds[1] == pytest.approx(pause["start"], abs=0.001)
    assert seconds[2] == pytest.approx(pause["end"], abs=0.001)
    assert "*Pause for 2s.*" in mp3.with_suffix(".md").read_text()


def test_preview_keeps_the_pause_the_build_plans(cli, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(ROUTINE))
    out = tmp_path / "out"
    assert cli("build", path, "-o", out, "--engine", "pyttsx3").exit_code == 0
    result = cli("preview", path, "--step", "1", "--no-play", "-o", out, "--engine", "pyttsx3")
    assert result.exit_code == 0, result.stderr
    events = [event for event in read_plan(out / "r.mp3")["events"] if event["chapter"] == 1]
    said = [event for event in events if event["kind"] == "speech"]
    (pause,) = [event for event in events if event["kind"] == "pause"]
    preview = decode(out / "r-preview-step1.mp3")
    assert len(preview) / SAMPLE_RATE == pytest.approx(said[-1]["end"] - said[0]["start"], abs=0.002)
    begins = said[0]["start"]
    quiet = window_levels(span(preview, pause["start"] - begins + 0.05, pause["end"] - begins - 0.05))
    assert quiet.max() < -60
    assert window_levels(span(preview, pause["end"] - begins, pause["end"] - begins + 0.5)).max() > -30
