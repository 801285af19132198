"""Cue placement tells the truth: times outside a hold are errors, moves are warned with their reason,
and validate, plan and build warn alike."""

from __future__ import annotations

import textwrap

import pytest
from conftest import read_plan

from voiceguide import audio, timeline
from voiceguide import routine as routines
from voiceguide.errors import VoiceguideError


def write(tmp_path, text: str):
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def speech(routine):
    return {text: audio.samples(1 + len(text) / 20) for text in timeline.spoken_lines(routine)}


def sound_length(path):
    return audio.samples({"tick": 0.06, "bell": 2.5, "chime": 3.0}[path.stem])


def plan_of(path, length=None):
    routine = routines.load(path)
    return timeline.plan(routine, speech(routine), sound_length, length=length)


OUTSIDE = """\
    title: T
    steps:
      - name: Warm up
        say: Rub your hands.
        hold: 20s
      - name: Shoulders
        say: Move to the shoulders.
        hold: 1m30s
        cues:
          - at: 2m
            say: Too late.
          - {at: -2m, sound: bell}
          - {at: 1m30s, say: Right at the end.}
          - {at: 95%, say: Near the end.}
          - {at: 1m29s, sound: bell}
    """


@pytest.mark.parametrize("command", ["validate", "plan", "build"])
def test_a_cue_outside_its_hold_is_an_error_at_its_line(cli, tmp_path, command):
    path = write(tmp_path, OUTSIDE)
    result = cli(command, path, *(["-o", tmp_path / "out"] if command == "build" else []))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}:10:13: steps[1].cues[0].at: 2m is past the end of the 1m30s hold; "
        "give a time inside it, or a longer 'hold'\n"
        f"error: {path}:12:14: steps[1].cues[1].at: -2m is before the start of the 1m30s hold; "
        "give a time inside it, or a longer 'hold'\n"
        f"error: {path}:13:14: steps[1].cues[2].at: 1m30s is at the end of the 1m30s hold; "
        "give a time inside it, or a longer 'hold'\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_a_hold_from_the_defaults_is_the_one_a_cue_is_checked_against(cli, tmp_path):
    path = write(
        tmp_path,
        """\
        title: T
        defaults: {hold: 30s}
        steps:
          - name: Shoulders
            say: Move to the shoulders.
            cues: [{at: 45s, sound: bell}]
          - name: Rest
            say: Rest.
            hold: 0s
            cues: [{at: half, sound: bell}]
        """,
    )
    result = cli("validate", path)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}:6:17: steps[0].cues[0].at: 45s is past the end of the 30s hold; "
        "give a time inside it, or a longer 'hold'\n"
        f"error: {path}:10:17: steps[1].cues[0].at: the step has no hold for the cue to sound in; give it a 'hold'\n"
    )


def test_a_share_of_the_hold_always_fits(tmp_path):
    path = write(
        tmp_path,
        """\
        title: T
        steps:
          - name: Shoulders
            say: Move to the shoulders.
            hold: 10s
            cues: [{at: 0%, sound: bell}, {at: 100%, sound: chime}]
        """,
    )
    plan = plan_of(path)
    hold = plan.of_kind("hold")[0]
    bell, chime = [event for event in plan.events if event.cue]
    assert bell.start == hold.start
    assert chime.end == hold.end - timeline.CUE_GAP  # moved back from the hold's very end, and warned
    assert plan.warnings == (
        f"{path}:6:40: steps[0].cues[1] (Shoulders): the cue 'chime' was moved 3.3s earlier "
        "so it ends before the hold does",
    )


def test_each_move_says_why(tmp_path):
    path = write(
        tmp_path,
        """\
        title: T
        steps:
          - name: Shoulders
            say: Move to the shoulders.
            hold: 20s
            cues:
              - {at: 0s, sound: bell}
              - {at: 1s, say: Press in.}
              - {at: -4s, sound: chime}
            countdown: 3
          - name: Neck
            say: Move to the neck.
            hold: 2s
            cues: [{at: half, sound: chime}]
        """,
    )
    plan = plan_of(path)
    assert plan.warnings == (
        f"{path}:8:14: steps[0].cues[1] (Shoulders): the cue 'Press in.' was moved 1.8s later "
        "so it does not overlap the cue 'bell'",
        f"{path}:9:14: steps[0].cues[2] (Shoulders): the cue 'chime' was moved 2.3s earlier "
        "so it does not overlap countdown 3",
        f"{path}:14:17: steps[1].cues[0] (Neck): the cue 'chime' (3s) does not fit in the 2s hold; "
        "give the step a longer hold",
    )
    ticks = [event.start for event in plan.events if event.sound and event.sound.stem == "tick"]
    hold = plan.of_kind("hold")[0]
    assert ticks == [hold.end - audio.samples(seconds) for seconds in (3, 2, 1)]  # a countdown keeps its beat


def test_a_step_run_twice_warns_once(tmp_path):
    path = write(
        tmp_path,
        """\
        title: T
        steps:
          - name: Shoulders
            say: Move to the shoulders.
            hold: 10s
            repeat: 2
            rounds: [left, right]
            cues: [{at: 100%, sound: bell}]
        """,
    )
    assert plan_of(path).warnings == (
        f"{path}:8:17: steps[0].cues[0] (Shoulders): the cue 'bell' was moved 2.8s earlier "
        "so it ends before the hold does",
    )


COLLIDING = """\
    title: Colliding
    steps:
      - name: Shoulders
        say: Move to the shoulders.
        hold: 8s
        countdown: 3
        cues:
          - {at: -3s, sound: bell}
        transition: none
      - name: Rest
        say: Rest.
        hold: 4s
        cues:
          - at: 100%
            sound: chime
        transition: none
    """


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


def test_validate_plan_and_build_print_the_same_warnings(cli, tmp_path):
    """Sound cues only, so the warnings do not depend on how long the voice takes to say a line."""
    path = write(tmp_path, COLLIDING)
    out = tmp_path / "out"
    validated = cli("validate", path)
    planned = cli("plan", path)
    built = cli("build", path, "-o", out, "--engine", "pyttsx3")
    assert (validated.exit_code, planned.exit_code, built.exit_code) == (0, 0, 0), built.stderr
    assert validated.stdout == f"ok: {path} (2 steps)\n"
    expected = [
        f"warning: {path}:8:14: steps[0].cues[0] (Shoulders): the cue 'bell' was moved 2.8s earlier "
        "so it does not overlap countdown 3",
        f"warning: {path}:14:13: steps[1].cues[0] (Rest): the cue 'chime' was moved 3.3s earlier "
        "so it ends before the hold does",
    ]
    assert warnings_of(validated.stderr) == expected
    assert warnings_of(planned.stderr) == expected
    assert warnings_of(built.stderr) == expected
    # The build placed the cue where the warning says: before the first tick, with the gap between.
    events = read_plan(out / "r.mp3")["events"]
    bell = next(event for event in events if event.get("sound") == "bell")
    first_tick = next(event for event in events if event.get("sound") == "tick")
    assert first_tick["start"] - bell["end"] == pytest.approx(audio.seconds(timeline.CUE_GAP), abs=0.001)


SHRINKING = """\
    title: T
    steps:
      - name: Shoulders
        say: Move to the shoulders.
        hold: 1m30s
        cues:
          - at: 1m
            sound: bell
          - {at: half, say: Halfway.}
      - name: Back
        say: Now the back.
        hold: 2m
        cues: [{at: -40s, sound: bell}]
    """


def test_a_shrunk_hold_keeps_a_cue_in_seconds_and_moves_a_share(tmp_path):
    path = write(tmp_path, SHRINKING)
    natural = plan_of(path)
    fitted = plan_of(path, length=natural.length - audio.samples(100))
    first, second = fitted.of_kind("hold")
    assert first.length < audio.samples(90) and second.length < audio.samples(120)
    assert first.length >= audio.samples(60 + 2.5) + timeline.CUE_GAP  # not below the cue at 1m and its bell
    cues = [event for event in fitted.events if event.cue]
    at_a_minute = next(event for event in cues if event.sound and first.start <= event.start < first.end)
    halfway = next(event for event in cues if event.text == "Halfway.")
    before_end = next(event for event in cues if second.start <= event.start < second.end)
    assert at_a_minute.start == first.start + audio.samples(60)
    assert abs(halfway.start - (first.start + first.length / 2)) <= 1
    assert before_end.start == second.end - audio.samples(40)
    assert fitted.warnings == ()


def test_a_cue_before_the_end_needs_only_its_seconds_of_hold(tmp_path):
    path = write(tmp_path, SHRINKING)
    # 1m30s shrinks to 1m2.8s (its bell at 1m, 2.5s long, and the gap); 2m to 40s, for its cue at -40s.
    first_shortest, second_shortest = audio.samples(62.5) + timeline.CUE_GAP, audio.samples(40)
    with pytest.raises(timeline.LengthUnreachable) as unreachable:
        plan_of(path, length=audio.samples(1))
    shortest = unreachable.value.shortest  # as the message gives it (chapters aligned to MP3 frames or not)
    fitted = plan_of(path, length=shortest)
    first, second = fitted.of_kind("hold")
    assert (first.length, second.length) == (first_shortest, second_shortest)
    with pytest.raises(VoiceguideError):
        plan_of(path, length=shortest - 1)


def test_a_length_too_short_for_a_cue_in_seconds_names_the_cue(cli, tmp_path):
    path = write(tmp_path, SHRINKING)
    out = tmp_path / "out"
    for command in ("plan", "build"):
        output = ["-o", out] if command == "build" else []
        result = cli(command, path, *output, "--length", "1m", "--engine", "pyttsx3")
        assert result.exit_code == 2
        assert result.stderr.startswith(
            f"error: {path}:7:13: steps[0].cues[0].at: 1m keeps its 1m30s hold from shrinking below 1m3s, "
            "so r runs at least "
        ), result.stderr
        assert result.stderr.endswith(
            "; asked for 1m; to let the cue move as its hold shrinks, give it as a share of the hold, like 67% "
            "(and so for steps[1].cues[0])\n"
        )
        assert len(result.stderr.splitlines()) == 1
    assert not (out / "r-1m.mp3").exists()


@pytest.mark.parametrize(
    "keys",
    [
        ["cues: [{at: 5s, sound: bell}, {at: half, sound: bell}]"],  # the hold's own min, 15s, is longer
        ["countdown: 25", "cues: [{at: 20s, sound: bell}]"],  # the countdown needs more of the hold than the cue
    ],
)
def test_a_cue_that_keeps_no_hold_from_shrinking_leaves_the_usual_message(tmp_path, keys):
    path = tmp_path / "r.yaml"
    step = "  - name: Shoulders\n    say: Move.\n    hold: 1m\n" + "".join(f"    {key}\n" for key in keys)
    path.write_text(f"title: T\nsteps:\n{step}")
    with pytest.raises(VoiceguideError, match=r"^r can run from \S+ to \S+; asked for 5s; lower some steps' 'min'"):
        plan_of(path, length=audio.samples(5))
